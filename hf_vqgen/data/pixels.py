"""`PixelTransform`: how every image that enters the package becomes a model's pixels — training data, the
pipelines' `image=` / `mask_image=` inputs, `sample.py --images_dir` and the demo all go through it. Imports no
data-loading stack (inference uses it).

Beyond the mode rule of `hf_vqgen.data.image_modes.to_model_mode`: EXIF orientation is applied (`datasets` does it when it
decodes a file, `PIL.Image.open` does not, so a phone photo read either way comes out the same), and an animated image
(GIF, APNG, WebP) is read as its first frame with a warning naming the frame count.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image, ImageOps

from .image_modes import WHITE, check_background, to_model_mode


logger = logging.getLogger(__name__)
RESIZE_MODES = ("resize", "pad")


def upright(image: Image.Image) -> Image.Image:
    """`image` with its EXIF orientation applied (a no-op when it has none), first frame of an animation (warned)."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        logger.warning("An animated image of %d frames: only its first frame is used.", frames)
        image.seek(0)
    return ImageOps.exif_transpose(image)


class PixelTransform:
    r"""
    PIL image -> `torch.FloatTensor` (C, resolution, resolution) in [-1, 1].

    Args:
        resolution (`int`): Output side length in pixels.
        num_channels (`int`, *optional*, defaults to 1): 1 (grayscale, PIL mode "L") or 3 (RGB); images are converted
            by `hf_vqgen.data.image_modes.to_model_mode` (alpha composited on `background`, 16-bit and float scaled to 8
            bits, unsupported modes refused).
        resize_mode (`str`, *optional*, defaults to `"resize"`):
            `"resize"`: scale the shorter side to `resolution` (bicubic) and center-crop the longer one.
            `"pad"`: keep the pixels as they are and pad the borders with black (-1) to `resolution`, centered;
            images larger than `resolution` raise a `ValueError` (no silent cropping).
        background (`int` or `tuple[int, int, int]`, *optional*, defaults to white `(255, 255, 255)`):
            Colour that transparent pixels are composited on; an int is a grey level.
    """

    def __init__(
        self,
        resolution: int,
        num_channels: int = 1,
        resize_mode: str = "resize",
        background: int | tuple[int, int, int] = WHITE,
    ):
        if resolution < 1:
            raise ValueError(f"`resolution` must be a positive integer, got {resolution}.")
        if num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {resize_mode!r}.")
        self.resolution = resolution
        self.num_channels = num_channels
        self.mode = "L" if num_channels == 1 else "RGB"
        self.resize_mode = resize_mode
        self.background = check_background(background)

    def _fit(self, image: Image.Image) -> Image.Image:
        size = (self.resolution, self.resolution)
        if image.size == size:
            return image
        if self.resize_mode == "resize":
            return ImageOps.fit(image, size, method=Image.Resampling.BICUBIC)
        width, height = image.size
        if width > self.resolution or height > self.resolution:
            raise ValueError(
                f"Image of {width}x{height} pixels is larger than resolution={self.resolution}; "
                "use resize_mode='resize' or a larger resolution."
            )
        left, top = (self.resolution - width) // 2, (self.resolution - height) // 2
        border = (left, top, self.resolution - width - left, self.resolution - height - top)
        return ImageOps.expand(image, border=border, fill=0)

    def fit_mask(self, mask: Image.Image) -> Image.Image:
        """A mask drawn over an image, put through the same geometry as the image (crop or pad), in mode "L"."""
        mask = upright(mask).convert("L")
        size = (self.resolution, self.resolution)
        if self.resize_mode == "resize" and mask.size != size:
            return ImageOps.fit(mask, size, method=Image.Resampling.NEAREST)
        return self._fit(mask)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = to_model_mode(upright(image), self.num_channels, self.background)
        array = np.asarray(self._fit(image), dtype=np.float32)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(array / 127.5 - 1.0)
