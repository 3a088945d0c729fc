"""Show a discrete-diffusion reverse process (`return_intermediates=True`) as a GIF and as a strip of frames, like
the original write-up's figures."""

from __future__ import annotations

from pathlib import Path

import PIL.Image
from diffusers.utils import export_to_gif

from ..image_utils import pil_grid


def reverse_process_frames(intermediates: list[list[PIL.Image.Image]], columns: int = 8) -> list[PIL.Image.Image]:
    """One frame per step: that step's batch of images as a grid."""
    if not intermediates:
        raise ValueError("`intermediates` is empty: sample with `return_intermediates=True`.")
    if not isinstance(intermediates[0], list) or not isinstance(intermediates[0][0], PIL.Image.Image):
        raise ValueError("`intermediates` must be PIL images per step (sample with output_type='pil').")
    return [pil_grid(step_images, columns=min(columns, len(step_images))) for step_images in intermediates]


def export_reverse_process(
    intermediates: list[list[PIL.Image.Image]],
    gif_path: str | Path,
    strip_path: str | Path | None = None,
    num_strip_samples: int = 4,
    num_strip_frames: int = 10,
    fps: int = 4,
    columns: int = 8,
) -> None:
    """Write the reverse process as an animated GIF (every step; the last frame held) and optionally as a strip:
    one row per sample (the first `num_strip_samples`), `num_strip_frames` evenly spaced steps from left to right."""
    frames = reverse_process_frames(intermediates, columns)
    export_to_gif(frames + [frames[-1]] * fps, str(gif_path), fps=fps)
    if strip_path is None:
        return
    steps = len(intermediates)
    picks = sorted({round(i * (steps - 1) / max(num_strip_frames - 1, 1)) for i in range(num_strip_frames)})
    samples = min(num_strip_samples, len(intermediates[0]))
    cells = [intermediates[step][sample] for sample in range(samples) for step in picks]
    pil_grid(cells, columns=len(picks)).save(strip_path)
