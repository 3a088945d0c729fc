"""Small helpers shared across the package."""

from __future__ import annotations

import hashlib

import torch


def state_dict_digest(state_dict: dict[str, torch.Tensor], length: int = 16) -> str:
    """SHA-256 over names and raw bytes of every tensor: identifies a set of weights exactly."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]
