"""Helpers for training priors over token grids."""

from __future__ import annotations

import math

import torch

from ..utils import seeded_randint
from ..vocabulary import IGNORE_INDEX, TokenLayout


# AdamW's betas for the priors (GPT-style: a shorter second-moment memory than Adam's 0.999)
PRIOR_ADAM_BETAS = (0.9, 0.95)


def bits_per_token(nats: float) -> float:
    """Cross entropy in nats per token -> bits per token."""
    return nats / math.log(2)


def codes_and_labels(batch: dict, layout: TokenLayout, class_dropout: float):
    """Token-dataset rows -> checked codes (B, N) and class labels (B,) or None; labels are replaced by the null
    class with probability `class_dropout` (classifier-free guidance training)."""
    codes = batch["token_ids"].long()
    layout.check_token_rows(codes)
    labels = None
    if layout.num_classes:
        labels = batch["label"].long().to(codes.device)
        if class_dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < class_dropout
            labels = labels.masked_fill(drop, layout.num_classes)  # the null class
    return codes, labels


def build_batch(batch: dict, layout: TokenLayout, class_dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-dataset rows -> GPT-2 `input_ids` and `labels` (`TokenLayout.autoregressive_sequence`)."""
    return layout.autoregressive_sequence(*codes_and_labels(batch, layout, class_dropout))


def weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay on matrices (ndim >= 2), none on biases and norm gains (as nanoGPT)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]


def build_diffusion_batch(
    batch: dict,
    layout: TokenLayout,
    scheduler,
    objective: str,
    class_dropout: float,
    extra_corruption: float = 0.1,
    loss_on: str = "corrupted",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-dataset rows -> denoiser `input_ids` [noise level?, class?, noisy grid] and `labels` (-100 = no loss).

    objective="original" (the original recipe): x_a = x corrupted at a random level, x_b = x_a with a further
    `extra_corruption` of its codes corrupted; the target is x_a at every position (g(x_b) -> x_a), and the denoiser
    is not told the level. objective="x0": x_t = x corrupted at a random level t (given as the noise-level token);
    the target is the clean x, on the corrupted positions (`loss_on="corrupted"`) or everywhere (`"all"`).
    """
    codes, labels = codes_and_labels(batch, layout, class_dropout)
    num_levels = scheduler.config.num_train_timesteps
    timesteps = seeded_randint(num_levels, (codes.shape[0],), generator, codes.device)
    noisy = scheduler.add_noise(codes, timesteps, generator=generator)
    if objective == "original":
        inputs = scheduler.corrupt(noisy, torch.tensor(extra_corruption), generator=generator)
        targets = noisy
        levels = None
    elif objective == "x0":
        inputs, targets, levels = noisy, codes.clone(), timesteps
        if loss_on == "corrupted":
            targets = targets.masked_fill(noisy == codes, IGNORE_INDEX)
        elif loss_on != "all":
            raise ValueError(f"`loss_on` must be 'corrupted' or 'all', got {loss_on!r}.")
    else:
        raise ValueError(f"`objective` must be 'original' or 'x0', got {objective!r}.")
    input_ids = layout.denoiser_input(inputs, levels if layout.num_noise_levels else None, labels)
    prefix = torch.full(
        (codes.shape[0], layout.denoiser_prefix_length), IGNORE_INDEX, dtype=torch.long, device=codes.device
    )
    return input_ids, torch.cat([prefix, targets], dim=1)
