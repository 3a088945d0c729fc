"""What the web demo (`examples/app.py`) does, as plain functions without Gradio: sample, complete an image from
its top token rows, inpaint a drawn area, show the reverse diffusion. The page only wires these to widgets and the
tests call them directly. Bad input raises `DemoInputError`, whose message the page shows as is; long calls report
to an optional `progress(fraction, description)` (the diffusion pipeline's step callback drives it).

Example:

```py
>>> from hf_vqgen.demo.functions import sample
>>> from hf_vqgen.demo.loading import load_demo_pipelines

>>> (entry,) = load_demo_pipelines(["pretrained/fashion-mnist-ar"])
>>> grid = sample(entry, ["Sneaker"], batch_size=8, seed=0)  # a PIL image, 8 enlarged samples in a row
```
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from PIL import ImageDraw

from ..data.pixels import PixelTransform
from ..image_utils import to_pil_images
from ..pipelines import export_reverse_process
from .loading import DemoInputError, DemoPipeline


MAX_UPLOAD_PIXELS = 4096 * 4096  # larger uploads are refused (the models see 28x28 or 64x64 pixels anyway)
DISPLAY_SIZE = 128  # outputs are enlarged (nearest neighbour, whole pixels) to at least this many pixels a side
MAX_BATCH_SIZE = 16
GRID_COLUMNS = 8
GREY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
Progress = Callable[[float, str], None]

# images in and out


def load_image(source) -> PIL.Image.Image:
    """An uploaded image (a path, a PIL image or an (H, W[, C]) uint8 array), fully decoded, or a `DemoInputError`
    for no image, a file that is not an image, or one larger than `MAX_UPLOAD_PIXELS`."""
    if source is None:
        raise DemoInputError("No image: upload one, or pick one from the gallery.")
    if isinstance(source, np.ndarray):
        source = PIL.Image.fromarray(source)
    if not isinstance(source, PIL.Image.Image):
        name = Path(str(source)).name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
                source = PIL.Image.open(source)
        except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning):
            raise DemoInputError(f"{name} is far too large; upload an image of at most 4096x4096 pixels.") from None
        except (OSError, ValueError):
            raise DemoInputError(f"{name} is not an image this demo can read; upload a PNG, JPEG or WebP.") from None
    width, height = source.size
    if width * height > MAX_UPLOAD_PIXELS:
        raise DemoInputError(
            f"The image is {width}x{height} pixels; upload one of at most 4096x4096 (it is shrunk to the model's "
            "size anyway)."
        )
    try:
        source.load()
    except OSError as error:
        raise DemoInputError(f"The image could not be decoded ({error}); it may be truncated.") from None
    return source


def prepare_image(entry: DemoPipeline, source, notes: list[str] | None = None) -> torch.Tensor:
    """`source` (see `load_image`) as the pipeline's input, (1, C, H, W) in [-1, 1]: converted by the package's image
    rule, a square k times the model's size box-reduced (so enlarged gallery images come back exactly), else
    resized and center-cropped. A grey image for an RGB model is used as grey RGB, with a note in `notes`."""
    image = load_image(source)
    if entry.num_channels == 3 and image.mode in GREY_MODES and notes is not None:
        notes.append("The image is greyscale; this pipeline works in colour, so it was used as grey RGB.")
    width, height = image.size
    if width == height and width > entry.resolution and width % entry.resolution == 0 and image.mode in ("L", "RGB"):
        image = image.reduce(width // entry.resolution)
    try:
        return PixelTransform(entry.resolution, entry.num_channels)(image)[None]
    except ValueError as error:  # a mode the package's image rule refuses, named in the message
        raise DemoInputError(str(error)) from None


def enlarge(image: PIL.Image.Image, size: int = DISPLAY_SIZE) -> PIL.Image.Image:
    """`image` scaled up by a whole factor (nearest neighbour) to at least `size` pixels a side."""
    factor = max(1, math.ceil(size / min(image.size)))
    return image.resize((image.width * factor, image.height * factor), PIL.Image.NEAREST)


def grid_shape(batch_size: int) -> tuple[int, int]:
    """(rows, columns) of the sample grid."""
    columns = min(batch_size, GRID_COLUMNS)
    return math.ceil(batch_size / columns), columns


def gallery_grid(images: list[PIL.Image.Image]) -> PIL.Image.Image:
    """The enlarged images in rows of `GRID_COLUMNS`, a last row left blank where it is short."""
    cells = [enlarge(image.convert("RGB")) for image in images]
    (rows, columns), (width, height) = grid_shape(len(cells)), cells[0].size
    grid = PIL.Image.new("RGB", (columns * width, rows * height), "white")
    for i, cell in enumerate(cells):
        grid.paste(cell, ((i % columns) * width, (i // columns) * height))
    return grid


def editor_image_and_mask(edited: dict | None) -> tuple[PIL.Image.Image, np.ndarray]:
    """An image editor's value (`{"background": image, "layers": [RGBA images], ...}`, Gradio's `ImageEditor`) ->
    the background and the painted area at its size, (H, W) bool (True where any layer has paint)."""
    background = (edited or {}).get("background")
    if background is None:
        raise DemoInputError("No image: pick one from the gallery or upload one, then paint over it.")
    background = load_image(background)
    masks = [
        np.asarray(load_image(layer).convert("RGBA"))[..., 3] > 0
        for layer in edited.get("layers") or []
        if layer is not None
    ]
    if not masks or not np.logical_or.reduce(masks).any():
        raise DemoInputError("Nothing is painted: paint over the part of the image to regenerate.")
    mask = PIL.Image.fromarray(np.logical_or.reduce(masks))
    return background, np.asarray(mask.resize(background.size, PIL.Image.NEAREST))


def model_view(entry: DemoPipeline, source, notes: list[str] | None = None) -> PIL.Image.Image:
    """`source` as the pipeline sees it (converted, resized), enlarged: what an image editor should show."""
    return enlarge(to_pil_images(prepare_image(entry, source, notes))[0])


def token_mask_from_pixels(mask, grid: tuple[int, int]) -> torch.Tensor:
    """A pixel mask (H, W) (True / white = regenerate) -> the token mask (h, w): a token is regenerated when any of
    its pixels is, after the center crop to a square that `prepare_image` applies to the image too."""
    array = np.asarray(load_image(mask).convert("L")) > 127 if not isinstance(mask, np.ndarray) else mask
    array = np.asarray(array, dtype=bool)
    height, width = array.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = torch.from_numpy(array[top : top + side, left : left + side].astype(np.float32))
    tokens = F.adaptive_max_pool2d(square[None, None], grid)[0, 0] > 0.5
    if not tokens.any():
        raise DemoInputError("The mask is empty: paint over the part of the image to regenerate.")
    return tokens


def _seeded(seed) -> torch.Generator:
    if not isinstance(seed, numbers.Real) or isinstance(seed, bool) or seed != int(seed) or seed < 0:
        raise DemoInputError(f"The seed must be a whole number >= 0, got {seed!r}.")
    return torch.Generator().manual_seed(int(seed))


def _count(value, name: str, low: int, high: int) -> int:
    if not isinstance(value, numbers.Real) or value != int(value) or not low <= value <= high:
        raise DemoInputError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(value)


def _step_callback(progress: Progress | None, num_steps: int, label: str):
    """A diffusion `callback_on_step_end` reporting each step to `progress`."""
    if progress is None:
        return None

    def callback(pipeline, step, timestep, tensors):
        progress((step + 1) / num_steps, f"{label}: step {step + 1} of {num_steps}")

    return callback


# the four tabs


def sample(
    entry: DemoPipeline,
    classes: list[str | None] | None = None,
    guidance_scale: float = 1.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    num_inference_steps: int = 8,
    seed: int = 0,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> PIL.Image.Image:
    """A grid of `batch_size` samples (rows of `GRID_COLUMNS`, enlarged), of the selected class names (one per
    level of `entry.classes`; `None` or the "(every ...)" choice cycles through them); `top_k` 0 or `None` = off.
    The same arguments give the same grid."""
    batch_size = _count(batch_size, "The batch size", 1, MAX_BATCH_SIZE)
    kwargs = {
        "batch_size": batch_size,
        "class_labels": entry.classes.class_labels(classes or [], batch_size),
        "guidance_scale": float(guidance_scale),
        "temperature": float(temperature),
        "top_k": int(top_k) if top_k else None,
        "generator": _seeded(seed),
    }
    if entry.has_reverse_process:
        steps = _count(num_inference_steps, "The number of steps", 1, entry.max_steps)
        kwargs.update(num_inference_steps=steps, callback_on_step_end=_step_callback(progress, steps, "Sampling"))
    if kwargs["class_labels"] is None and kwargs["guidance_scale"] != 1.0:
        raise DemoInputError("This pipeline has no classes, so guidance must be 1.")
    return gallery_grid(entry.pipeline(**kwargs).images)


def mark_rows(image: PIL.Image.Image, num_rows: int, grid_height: int) -> PIL.Image.Image:
    """`image` (enlarged, RGB) with a red line under its first `num_rows` token rows."""
    marked = enlarge(image.convert("RGB"))
    y = round(num_rows * marked.height / grid_height)
    ImageDraw.Draw(marked).line((0, min(y, marked.height - 1), marked.width, min(y, marked.height - 1)), "red", 2)
    return marked


def complete(
    ar: DemoPipeline | None,
    diffusion: DemoPipeline | None,
    image,
    num_rows: int,
    num_samples: int = 4,
    num_inference_steps: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
    notes: list[str] | None = None,
) -> list[tuple[PIL.Image.Image, str]]:
    """Keep the top `num_rows` token rows of `image` and sample the rest, `num_samples` times with the AR prior
    (`ar`) and as many with the diffusion prior inpainting the same rows (`diffusion`); either may be `None`.
    Returns (enlarged image, caption) pairs: the original (a red line under the kept rows), its reconstruction by
    the tokenizer, then the completions. Remarks about the input (a grey image for a colour model) go to `notes`."""
    first = ar or diffusion
    if first is None:
        raise DemoInputError("No AR or diffusion pipeline is loaded for this dataset.")
    pixels = prepare_image(first, image, notes)
    num_rows = _count(num_rows, "The number of kept rows", 0, first.grid_height)
    num_samples = _count(num_samples, "The number of completions", 1, MAX_BATCH_SIZE)
    vqvae = first.pipeline.vqvae
    with torch.no_grad():
        reconstruction = vqvae.decode_ids(vqvae.encode_to_ids(pixels.to(vqvae.device, vqvae.dtype)))
    original = to_pil_images(pixels)[0]
    shown = [(mark_rows(original, num_rows, first.grid_height), f"original, {num_rows} rows kept")]
    shown.append((enlarge(to_pil_images(reconstruction)[0]), "reconstruction"))
    batch = pixels.expand(num_samples, -1, -1, -1)
    if ar is not None:
        images = ar.pipeline(image=batch, num_prefix_rows=num_rows, generator=_seeded(seed)).images
        shown += [(enlarge(im), f"AR {i + 1}") for i, im in enumerate(images)]
    if diffusion is not None:
        steps = _count(num_inference_steps, "The number of steps", 1, diffusion.max_steps)
        token_mask = torch.zeros(diffusion.grid_height, diffusion.pipeline.layout.grid_width, dtype=torch.bool)
        token_mask[num_rows:] = True
        callback = _step_callback(progress, steps, "Diffusion")
        images = diffusion.pipeline(
            image=batch, token_mask=token_mask, num_inference_steps=steps, generator=_seeded(seed),
            callback_on_step_end=callback,
        ).images  # fmt: skip
        shown += [(enlarge(im), f"diffusion {i + 1}") for i, im in enumerate(images)]
    return shown


def inpaint(
    entry: DemoPipeline,
    image,
    mask,
    num_samples: int = 4,
    num_inference_steps: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
    notes: list[str] | None = None,
) -> list[tuple[PIL.Image.Image, str]]:
    """Resample the tokens under `mask` ((H, W) bool array or image of `image`'s size, True / white = regenerate)
    with the diffusion prior, keeping the rest. Returns (enlarged image, caption) pairs: the original, the
    regenerated tokens shaded red, then `num_samples` results. Remarks about the input go to `notes`."""
    if not entry.has_reverse_process:
        raise DemoInputError(f"{entry.name} is not a diffusion pipeline; inpainting needs one.")
    pixels = prepare_image(entry, image, notes)
    shape = np.asarray(mask).shape[:2] if isinstance(mask, np.ndarray) else load_image(mask).size[::-1]
    if shape != load_image(image).size[::-1]:
        raise DemoInputError(f"The mask is {shape[1]}x{shape[0]} pixels but the image is not; draw on the image.")
    layout = entry.pipeline.layout
    token_mask = token_mask_from_pixels(mask, (layout.grid_height, layout.grid_width))
    num_samples = _count(num_samples, "The number of samples", 1, MAX_BATCH_SIZE)
    steps = _count(num_inference_steps, "The number of steps", 1, entry.max_steps)
    images = entry.pipeline(
        image=pixels.expand(num_samples, -1, -1, -1), token_mask=token_mask, num_inference_steps=steps,
        generator=_seeded(seed), callback_on_step_end=_step_callback(progress, steps, "Inpainting"),
    ).images  # fmt: skip
    original = enlarge(to_pil_images(pixels)[0].convert("RGB"))
    cells = token_mask.repeat_interleave(original.height // layout.grid_height, 0)
    cells = cells.repeat_interleave(original.width // layout.grid_width, 1).numpy()
    shaded = np.asarray(original).copy()
    shaded[cells] = (0.5 * shaded[cells] + [127, 0, 0]).astype(np.uint8)
    shown = [(original, "original"), (PIL.Image.fromarray(shaded), f"{int(token_mask.sum())} tokens")]
    return shown + [(enlarge(im), f"sample {i + 1}") for i, im in enumerate(images)]


def reverse_process(
    entry: DemoPipeline,
    classes: list[str | None] | None = None,
    num_inference_steps: int = 16,
    seed: int = 0,
    guidance_scale: float = 1.0,
    output_dir: str | os.PathLike = ".",
    progress: Progress | None = None,
) -> tuple[list[tuple[PIL.Image.Image, str]], str]:
    """One sample's reverse diffusion: each step's decoded grid (enlarged; MASK positions shown as the denoiser's
    guess) with its caption, and the path of the GIF of every step written into `output_dir`."""
    if not entry.has_reverse_process:
        raise DemoInputError(f"{entry.name} is not a diffusion pipeline; the reverse process needs one.")
    steps = _count(num_inference_steps, "The number of steps", 1, entry.max_steps)
    labels = entry.classes.class_labels(classes or [], 1)
    out = entry.pipeline(
        batch_size=1, class_labels=labels, guidance_scale=float(guidance_scale) if labels else 1.0,
        num_inference_steps=steps, generator=_seeded(seed), return_intermediates=True,
        callback_on_step_end=_step_callback(progress, steps, "Reverse diffusion"),
    )  # fmt: skip
    frames = [enlarge(step_images[0]) for step_images in out.intermediates]
    gif_path = Path(output_dir) / f"reverse_process_seed{int(seed)}.gif"
    export_reverse_process([[frame] for frame in frames], gif_path)
    return [(frame, f"step {i + 1}") for i, frame in enumerate(frames)], str(gif_path)
