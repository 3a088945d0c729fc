"""Helpers for training priors over token grids."""

from __future__ import annotations

import math

import torch

from ..vocabulary import TokenLayout


def bits_per_token(nats: float) -> float:
    """Cross entropy in nats per token -> bits per token."""
    return nats / math.log(2)


def build_batch(batch: dict, layout: TokenLayout, class_dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-dataset rows -> GPT-2 `input_ids` [BOS, class?, codes] and `labels` with -100 on the prefix, so that the
    loss covers the code positions only. Labels are replaced by the null class with probability `class_dropout`
    (classifier-free guidance training)."""
    codes = batch["token_ids"].long()
    if codes.numel() and (codes.min() < 0 or codes.max() >= layout.num_codes):
        raise ValueError(f"`token_ids` outside the codebook [0, {layout.num_codes - 1}]: wrong tokenizer?")
    if codes.shape[1] != layout.num_tokens:
        raise ValueError(f"Token rows have {codes.shape[1]} ids but the grid holds {layout.num_tokens}.")
    labels = None
    if layout.num_classes:
        labels = batch["label"].long().to(codes.device)
        if class_dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < class_dropout
            labels = labels.masked_fill(drop, layout.num_classes)  # the null class
    prompt = layout.prompt(codes.shape[0], labels, device=codes.device)
    input_ids = torch.cat([prompt, codes], dim=1)
    targets = input_ids.clone()
    targets[:, : layout.prefix_length] = -100
    return input_ids, targets


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on matrices (ndim >= 2), none on biases and norm gains (as nanoGPT)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
