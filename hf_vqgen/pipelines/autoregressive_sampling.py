"""Autoregressive sampling over codebook ids: one step (guidance, masking, then `hf_vqgen.sampling`), the
KV-cached loop the pipeline uses, and the full-recompute loop of the original method (a reference for tests and
benchmarks). Both loops draw from the same `generator` in the same order, so they agree token for token."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from transformers import GPT2LMHeadModel, StaticCache

from ..sampling import apply_guidance, draw_tokens
from ..vocabulary import TokenLayout


def next_tokens(
    logits: torch.Tensor,
    code_mask: torch.Tensor,
    guidance_scale: float,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Logits (B, V) — or (2B, V) with the unconditional half last when guiding — to sampled codes (B,)."""
    logits = apply_guidance(logits.float(), guidance_scale)
    logits = logits.masked_fill(~code_mask, float("-inf"))  # only ever emit codebook ids
    return draw_tokens(logits, temperature, top_k, top_p, generator)


SampleStep = Callable[[torch.Tensor], torch.Tensor]

# transformers 5 renamed `past_key_values` to `cache` (the old name warns, then goes in 5.40); accept both.
_CACHE_ARGUMENT = "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


def _no_padding(input_ids: torch.Tensor) -> torch.Tensor:
    """An all-ones attention mask: prompts are never padded, but the prior's pad id equals its BOS id, so without a
    mask transformers cannot tell and warns on every call."""
    return torch.ones_like(input_ids)


@torch.no_grad()
def sample_with_cache(
    prior: GPT2LMHeadModel,
    input_ids: torch.Tensor,
    num_new: int,
    step: SampleStep,
    progress=None,
    static_cache: bool = False,
) -> torch.Tensor:
    """Extend `input_ids` (B', L) by `num_new` codes, feeding the model one new token at a time with its KV cache
    (the prefix is never recomputed). `step` maps last-position logits (B', V) to codes (B,).

    `static_cache`: the cache is preallocated to the whole sequence (transformers' `StaticCache`, each step writing
    its slot at `cache_position`), so every step has the same shapes and nothing is allocated or concatenated: the
    step can be compiled (`torch.compile`) or captured in CUDA graphs. The same draws in the same order give the same
    codes (tested token for token)."""
    repeats, prompt_length = input_ids.shape
    positions = torch.arange(prompt_length + num_new, device=input_ids.device)
    cache = StaticCache(config=prior.config, max_cache_len=prompt_length + num_new) if static_cache else None
    fixed = {_CACHE_ARGUMENT: cache, "cache_position": positions[:prompt_length]} if static_cache else {}
    output = prior(input_ids=input_ids, attention_mask=_no_padding(input_ids), use_cache=True, **fixed)
    new = []
    for i in range(num_new):
        codes = step(output.logits[:, -1])  # 1. sample from the last position
        new.append(codes)
        if progress is not None:
            progress.update(1)
        if i + 1 < num_new:  # 2. feed it (to both halves when guiding), reusing the cache
            fed = codes.repeat(repeats // codes.shape[0]).view(-1, 1)
            extra = {_CACHE_ARGUMENT: getattr(output, _CACHE_ARGUMENT)}
            if static_cache:
                extra["cache_position"] = positions[prompt_length + i : prompt_length + i + 1]
            output = prior(input_ids=fed, use_cache=True, **extra)
    return torch.stack(new, dim=1) if new else input_ids.new_zeros((input_ids.shape[0], 0))


@torch.no_grad()
def sample_with_recompute(prior: GPT2LMHeadModel, input_ids: torch.Tensor, num_new: int, step: SampleStep):
    """The same, recomputing the whole sequence at every step (the original method; quadratic cost)."""
    repeats = input_ids.shape[0]
    sequence, new = input_ids, []
    for _ in range(num_new):
        codes = step(prior(input_ids=sequence, attention_mask=_no_padding(sequence), use_cache=False).logits[:, -1])
        new.append(codes)
        sequence = torch.cat([sequence, codes.repeat(repeats // codes.shape[0]).view(-1, 1)], dim=1)
    return torch.stack(new, dim=1) if new else input_ids.new_zeros((input_ids.shape[0], 0))


def build_input_ids(
    layout: TokenLayout, batch_size: int, class_labels: torch.Tensor | None, prefix: torch.Tensor | None, guided: bool
) -> torch.Tensor:
    """[BOS, class?, prefix codes] (B, L); with guidance, the same rows again with the null class below them."""
    device = prefix.device if prefix is not None else None
    rows = layout.prompt(batch_size, class_labels, device=device)
    if guided:
        rows = torch.cat([rows, layout.prompt(batch_size, None, device=device)])
    if prefix is not None:
        rows = torch.cat([rows, prefix.repeat(rows.shape[0] // batch_size, 1)], dim=1)
    return rows
