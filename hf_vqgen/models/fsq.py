"""Finite scalar quantization (FSQ; Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of the d code dimensions is bounded and rounded to one of `levels[i]` values; the codebook is implicit (every
combination: prod(levels) codes), so there is no codebook loss, no commitment loss, and every code is reachable by
construction. Here the implicit codebook is also materialised as `embedding` (a frozen `nn.Embedding` of the
normalised grid points, id = mixed-radix number of the per-dimension digits), so that `get_codebook_entry` is a table
lookup and a checkpoint's ids decode identically in stock `diffusers.VQModel` (`lookup_from_codebook`). Stock
`VQModel.encode` + its nearest-neighbour quantizer does *not* reproduce FSQ's ids: FSQ rounds the tanh-bounded
latent, the stock quantizer the raw one, and those agree only where tanh is close to the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quantizer import QuantizerInfo, code_counts


def _round_straight_through(x: torch.Tensor) -> torch.Tensor:
    return x + (x.round() - x).detach()


class FiniteScalarQuantizer(nn.Module):
    r"""
    Per-dimension bounded rounding with an implicit codebook.

    Parameters:
        levels (`list[int]`): Values per dimension, each >= 2 (the paper's recommendations: [8, 5, 5, 5] for 1000
            codes, [8, 8, 8] for 512, [8, 6, 5] for 240, [7, 5, 5, 5, 5] for 4375).
    """

    def __init__(self, levels: list[int] | tuple[int, ...]):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"`fsq_levels` must be a non-empty list of integers >= 2, got {levels}.")
        self.levels = levels
        self.n_e = math.prod(levels)  # diffusers' attribute names, as `VectorQuantizer`
        self.vq_embed_dim = len(levels)
        levels_tensor = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("_levels", levels_tensor, persistent=False)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0)
        self.register_buffer("_basis", basis, persistent=False)
        self.register_buffer("_half_width", (levels_tensor // 2), persistent=False)
        self.embedding = nn.Embedding(self.n_e, self.vq_embed_dim)
        self.embedding.weight.data.copy_(self.ids_to_codes(torch.arange(self.n_e)))
        self.embedding.weight.requires_grad_(False)  # fixed grid: nothing to learn (and nothing for DDP to wait on)

    # the grid

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) latents -> values in (-L/2, L/2) per dimension, shifted so that rounding gives L values also
        for even L (the paper's `bound`)."""
        eps = 1e-3
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def codes_to_ids(self, digits: torch.Tensor) -> torch.Tensor:
        """Per-dimension integer digits (..., d) in [-L//2, ...] -> ids (...) (mixed radix, first dimension fastest)."""
        return ((digits + self._half_width).long() * self._basis).sum(dim=-1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids (...) -> normalised code vectors (..., d), each dimension in [-1, 1]."""
        digits = (ids[..., None] // self._basis.to(ids.device)) % self._levels.to(ids.device).long()
        return (digits.float() - self._half_width.to(ids.device)) / self._half_width.to(ids.device)

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, d, h, w) -> normalised codes (B*h*w, d) with straight-through gradients, and ids (B*h*w,)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.vq_embed_dim).float()
        rounded = _round_straight_through(self.bound(flat))
        return rounded / self._half_width, self.codes_to_ids(rounded.detach())

    # the quantizer interface (see `hf_vqgen.models.quantizer.Quantizer`)

    def lookup_ids(self, z: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._quantize(z)[1].view(batch, height, width)

    def get_codebook_entry(self, indices: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        z_q = F.embedding(indices, self.embedding.weight)
        if shape is not None:
            z_q = z_q.view(shape).permute(0, 3, 1, 2).contiguous()
        return z_q

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, QuantizerInfo]:
        """Quantize `z` (B, d, h, w): `(z_q, loss, QuantizerInfo)`; the loss is 0 (FSQ needs none)."""
        batch, _, height, width = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            codes, ids = self._quantize(z)
            counts = code_counts(ids, self.n_e)
            probs = counts / counts.sum()
            perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
            usage = (counts > 0).float().mean()
        z_q = codes.view(batch, height, width, -1).permute(0, 3, 1, 2).contiguous().to(z.dtype)
        loss = z.new_zeros(())
        return z_q, loss, QuantizerInfo(perplexity, usage, ids.view(batch, height, width))
