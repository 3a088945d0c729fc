"""One rule that turns any PIL image into the mode a model reads ("L" or "RGB"), for every image source.

The rule, in order:

1. **Alpha is composited on a background** (white by default): modes `LA`, `La`, `RGBA`, `RGBa`, `PA`, and `1`, `L`,
   `P`, `RGB` images with a colour-key transparency (`image.info["transparency"]`, e.g. a PNG `tRNS` chunk). A
   pixel of opacity `a` (0..255) becomes `round((colour * a + background * (255 - a)) / 255)` per channel, so a fully
   transparent pixel is the background and never the hidden colour behind it (often black).
2. **High bit depths are scaled to 8 bits, never clipped**: `I;16`, `I;16L`, `I;16B`, `I;16N` (unsigned 16-bit)
   are divided by 257 (65535 -> 255) and rounded; `I` (32-bit integer, what older Pillow and some TIFFs give for
   16-bit greys) is read as 16-bit the same way and refused if a value lies outside [0, 65535]; `F` (32-bit float)
   must lie in [0, 1] and is multiplied by 255, anything else (including NaN) is refused rather than guessed.
3. `1`, `L`, `P`, `RGB`, `RGBX`, `CMYK`, `YCbCr` are converted by Pillow as usual.
4. **Then the target channels**: `L` for 1 channel (ITU-R 601-2 luma), `RGB` for 3 (grey replicated).

Any other mode (`LAB`, `HSV`, ...) raises a `ValueError` naming it. An `L` image asked for as 1 channel and an `RGB`
image asked for as 3 channels are returned unchanged (the very same object).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


WHITE = (255, 255, 255)
ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
COLOUR_KEY_MODES = ("1", "L", "P", "RGB")  # modes whose `info["transparency"]` Pillow turns into alpha
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
PLAIN_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr")
SUPPORTED_MODES = ALPHA_MODES + SIXTEEN_BIT_MODES + PLAIN_MODES + ("I", "F")


def check_background(background: int | tuple[int, int, int]) -> tuple[int, int, int]:
    """`background` as an (R, G, B) tuple of ints in [0, 255]; an int is a grey level."""
    colour = (background,) * 3 if isinstance(background, int) else tuple(background)
    if len(colour) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in colour):
        raise ValueError(f"`background` must be an int or an (R, G, B) tuple of ints in [0, 255], got {background!r}.")
    return colour


def _composite(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = np.asarray(image.convert("LA").convert("RGBA") if image.mode == "La" else image.convert("RGBA"))
    colour, alpha = rgba[..., :3].astype(np.uint32), rgba[..., 3:].astype(np.uint32)
    blended = (colour * alpha + np.asarray(background, dtype=np.uint32) * (255 - alpha) + 127) // 255
    return Image.fromarray(blended.astype(np.uint8), mode="RGB")


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image)
    if image.mode == "F":
        low, high = float(np.min(values)), float(np.max(values))
        if not (0.0 <= low and high <= 1.0):  # also False for NaN
            raise ValueError(
                f"Image mode 'F' (32-bit float) must hold values in [0, 1] (scaled by 255), got [{low}, {high}]; "
                "rescale it to [0, 1] or convert it to an 8-bit mode ('L') yourself."
            )
        return Image.fromarray(np.rint(values * 255.0).astype(np.uint8), mode="L")
    if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(
            f"Image mode 'I' (32-bit integer) is read as 16-bit, values in [0, 65535]; got [{values.min()}, "
            f"{values.max()}]. Rescale it or convert it to an 8-bit mode ('L') yourself."
        )
    return Image.fromarray(np.rint(values.astype(np.float64) / 257.0).astype(np.uint8), mode="L")


def to_model_mode(
    image: Image.Image, num_channels: int, background: int | tuple[int, int, int] = WHITE
) -> Image.Image:
    """
    `image` in PIL mode "L" (`num_channels=1`) or "RGB" (`num_channels=3`), following the module's rule: alpha
    composited on `background`, high bit depths scaled to 8 bits, unknown modes refused.

    Args:
        image (`PIL.Image.Image`): Any image in one of `SUPPORTED_MODES`.
        num_channels (`int`): 1 or 3.
        background (`int` or `tuple[int, int, int]`, *optional*, defaults to white `(255, 255, 255)`):
            Colour that transparent pixels are composited on; an int is a grey level.

    Raises:
        `ValueError`: for an unsupported mode (named), a float image outside [0, 1], a 32-bit integer image outside
        [0, 65535], `num_channels` other than 1 or 3, or a malformed `background`.

    Example:

    ```py
    >>> from PIL import Image
    >>> to_model_mode(Image.new("RGBA", (2, 2), (255, 0, 0, 0)), 3).getpixel((0, 0))
    (255, 255, 255)
    ```
    """
    if num_channels not in (1, 3):
        raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
    background = check_background(background)
    target, mode = ("L" if num_channels == 1 else "RGB"), image.mode
    if mode not in SUPPORTED_MODES:
        raise ValueError(
            f"Image mode {mode!r} is not supported; expected one of {', '.join(SUPPORTED_MODES)}. "
            "Convert it to 'RGB' or 'L' yourself."
        )
    if mode in ALPHA_MODES or (mode in COLOUR_KEY_MODES and "transparency" in image.info):
        image = _composite(image, background)
    elif mode in SIXTEEN_BIT_MODES or mode in ("I", "F"):
        image = _high_bit_depth_to_l(image)
    return image if image.mode == target else image.convert(target)
