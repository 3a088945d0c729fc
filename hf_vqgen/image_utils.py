"""Turning [-1, 1] tensors into PIL images and grids (validation grids, figures, the reverse-process GIF)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils import make_image_grid
from PIL import Image


def to_pil_images(images: torch.Tensor) -> list[Image.Image]:
    """(B, C, H, W) in [-1, 1] -> B PIL images (mode "L" for one channel, "RGB" for three)."""
    arrays = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    arrays = arrays.transpose(0, 2, 3, 1)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in np.ascontiguousarray(arrays)]


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, resize: int | None = None):
    """Grid with originals in the odd rows and their reconstructions below them (rows of 8)."""
    cols = min(8, originals.shape[0])
    rows = []
    for start in range(0, cols * (originals.shape[0] // cols), cols):
        rows += to_pil_images(originals[start : start + cols]) + to_pil_images(reconstructions[start : start + cols])
    return make_image_grid(rows, rows=len(rows) // cols, cols=cols, resize=resize)


def pil_grid(images: list[Image.Image], columns: int = 8, resize: int | None = None) -> Image.Image:
    """Grid of PIL images, `columns` wide; a last incomplete row is dropped."""
    columns = min(columns, len(images))
    rows = len(images) // columns
    return make_image_grid(images[: rows * columns], rows=rows, cols=columns, resize=resize)


def image_grid(images: torch.Tensor, columns: int = 8, resize: int | None = None) -> Image.Image:
    """Grid of (B, C, H, W) images in [-1, 1], `columns` wide; a last incomplete row is dropped."""
    return pil_grid(to_pil_images(images), columns, resize)
