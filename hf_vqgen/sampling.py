"""Drawing token ids from logits, shared by both priors: classifier-free guidance, logits filtering (temperature,
top-k, top-p; greedy at temperature 0) and seeded draws. The autoregressive step calls it on the last position's
logits (B, V); the discrete-diffusion scheduler on every position at once (B, N, K)."""

from __future__ import annotations

import torch

from .utils import seeded_multinomial


def apply_guidance(logits: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance on logits (2B, ...) holding the conditional rows over the unconditional ones:
    `uncond + s * (cond - uncond)` (B, ...); with s = 1 the logits are returned as they are."""
    if guidance_scale == 1.0:
        return logits
    conditional, unconditional = logits.chunk(2)
    return unconditional + guidance_scale * (conditional - unconditional)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Keep the `top_k` largest logits and the smallest set whose probability reaches `top_p`; others -> -inf."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return logits


def draw_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.LongTensor:
    """One id per row of `logits` (..., V) -> (...): the argmax at `temperature` 0, else a draw from the filtered
    softmax at `temperature` (rows in order, from `generator`)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(dim=-1)
    return seeded_multinomial(probs.flatten(0, -2), generator).view(logits.shape[:-1])
