"""Image datasets in, pixel tensors in [-1, 1] out.

`load_image_dataset` gives a `datasets.Dataset` with an `image` column (PIL images) and, where the source has
labels, a `label` column, from Fashion-MNIST (local IDX files or the Hub copy), any Hub dataset id, or a local image
folder. `PixelTransform` / `with_pixel_values` turn its images into `pixel_values` tensors.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm.auto import tqdm


logger = logging.getLogger(__name__)

FASHION_MNIST = "fashion_mnist"
FASHION_MNIST_DIR_ENV = "HF_VQGEN_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_IDX_PREFIX = {"train": "train", "test": "t10k"}
RESIZE_MODES = ("resize", "pad")


# sources


def fashion_mnist_dir() -> Path:
    """Folder searched for the Fashion-MNIST IDX files: `$HF_VQGEN_FASHION_MNIST_DIR` or the Debian package's."""
    return Path(os.environ.get(FASHION_MNIST_DIR_ENV, FASHION_MNIST_DEFAULT_DIR))


def _idx_paths(split: str) -> tuple[Path, Path]:
    prefix = _IDX_PREFIX[split]
    folder = fashion_mnist_dir()
    return folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"


def has_local_fashion_mnist() -> bool:
    return all(path.is_file() for split in _IDX_PREFIX for path in _idx_paths(split))


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def _load_fashion_mnist(split: str, cache_dir: str | None) -> datasets.Dataset:
    if split not in _IDX_PREFIX:
        raise ValueError(f"Fashion-MNIST has splits {tuple(_IDX_PREFIX)}, got split={split!r}.")
    if not has_local_fashion_mnist():
        logger.info(
            "Fashion-MNIST IDX files not found in %s; using the Hub copy %s.",
            fashion_mnist_dir(),
            FASHION_MNIST_HUB_ID,
        )
        return datasets.load_dataset(FASHION_MNIST_HUB_ID, split=split, cache_dir=cache_dir)
    images_path, labels_path = _idx_paths(split)
    images = _read_idx(images_path, offset=16).reshape(-1, 28, 28)  # IDX: 16-byte header, then uint8 pixels
    labels = _read_idx(labels_path, offset=8)  # 8-byte header, then one uint8 label per image
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(FASHION_MNIST_CLASSES))}
    )
    return datasets.Dataset.from_dict({"image": list(images), "label": labels.tolist()}, features=features)


def _is_readable(example: dict) -> bool:
    image = example["image"]
    try:
        with Image.open(io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"]) as opened:
            opened.load()  # decodes every pixel: catches truncated files, not just bad headers
        return True
    except Exception:  # any decoding failure means the file is unusable
        return False


def _drop_unreadable(dataset: datasets.Dataset) -> datasets.Dataset:
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    readable = raw.filter(_is_readable, desc="Checking images")
    if len(readable) < len(raw):
        logger.warning("Skipped %d unreadable or truncated image file(s) of %d.", len(raw) - len(readable), len(raw))
    return readable.cast_column("image", datasets.Image())


def load_image_dataset(
    name_or_path: str,
    split: str = "train",
    image_column: str = "image",
    label_column: str | None = "label",
    cache_dir: str | None = None,
) -> datasets.Dataset:
    """
    Load an image dataset split as a `datasets.Dataset` with columns `image` (PIL) and, if present, `label`.

    Args:
        name_or_path (`str`): `"fashion_mnist"` (the IDX files in `$HF_VQGEN_FASHION_MNIST_DIR` or
            `/usr/share/datasets/fashion-mnist/`, from Debian's `dataset-fashion-mnist`; else the Hub copy
            `zalando-datasets/fashion_mnist`), a local folder of images (loaded as `imagefolder`: `train/` and
            `test/` sub-folders become splits, class sub-folders become labels), or a Hub dataset id.
        split (`str`, *optional*, defaults to `"train"`): Split to load; the source's splits are kept as they are.
        image_column (`str`, *optional*, defaults to `"image"`): Source column holding the images.
        label_column (`str`, *optional*, defaults to `"label"`): Source column holding class labels, if any.
        cache_dir (`str`, *optional*): `datasets` cache folder.

    Unreadable or truncated image files (local folders and Hub datasets) are skipped and counted in the log.

    Raises:
        `ValueError`: if the split, the image column is missing, or no readable image is left.
    """
    if name_or_path == FASHION_MNIST:
        dataset = _load_fashion_mnist(split, cache_dir)
    elif Path(name_or_path).is_dir():
        dataset = datasets.load_dataset("imagefolder", data_dir=name_or_path, split=split, cache_dir=cache_dir)
    else:
        dataset = datasets.load_dataset(name_or_path, split=split, cache_dir=cache_dir)

    if image_column not in dataset.column_names:
        raise ValueError(
            f"`image_column` {image_column!r} is not a column of {name_or_path!r}: {dataset.column_names}."
        )
    keep = {image_column: "image"}
    if label_column and label_column in dataset.column_names:
        keep[label_column] = "label"
    dataset = dataset.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})
    if name_or_path != FASHION_MNIST or not has_local_fashion_mnist():
        dataset = _drop_unreadable(dataset)
    if len(dataset) == 0:
        raise ValueError(f"The {split!r} split of {name_or_path!r} has no readable images.")
    return dataset


# pixels


class PixelTransform:
    r"""
    PIL image -> `torch.FloatTensor` (C, resolution, resolution) in [-1, 1].

    Args:
        resolution (`int`): Output side length in pixels.
        num_channels (`int`, *optional*, defaults to 1): 1 (grayscale, PIL mode "L") or 3 (RGB); images are converted.
        resize_mode (`str`, *optional*, defaults to `"resize"`):
            `"resize"`: scale the shorter side to `resolution` (bicubic) and center-crop the longer one.
            `"pad"`: keep the pixels as they are and pad the borders with black (-1) to `resolution`, centered;
            images larger than `resolution` raise a `ValueError` (no silent cropping).
    """

    def __init__(self, resolution: int, num_channels: int = 1, resize_mode: str = "resize"):
        if resolution < 1:
            raise ValueError(f"`resolution` must be a positive integer, got {resolution}.")
        if num_channels not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 or 3, got {num_channels}.")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"`resize_mode` must be one of {RESIZE_MODES}, got {resize_mode!r}.")
        self.resolution = resolution
        self.mode = "L" if num_channels == 1 else "RGB"
        self.resize_mode = resize_mode

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

    def __call__(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(self._fit(image.convert(self.mode)), dtype=np.float32)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(array / 127.5 - 1.0)


def with_pixel_values(dataset: datasets.Dataset, transform: PixelTransform) -> datasets.Dataset:
    """`dataset` whose rows come out as `{"pixel_values": (C, H, W) tensor, "label": int}` (label if present)."""

    def apply(batch: dict) -> dict:
        out = {"pixel_values": [transform(image) for image in batch["image"]]}
        if "label" in batch:
            out["label"] = batch["label"]
        return out

    return dataset.with_transform(apply)


def collate_pixel_values(examples: list[dict]) -> dict[str, torch.Tensor]:
    """DataLoader `collate_fn` for `with_pixel_values` rows."""
    batch = {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}
    if "label" in examples[0]:
        batch["label"] = torch.tensor([example["label"] for example in examples], dtype=torch.long)
    return batch


# token datasets

TOKENIZER_IDENTITY_FILE = "hf_vqgen_tokenizer.json"


def tokenizer_identity(vqvae) -> dict:
    """What a token dataset must match to be modelled with this tokenizer: codebook size, grid, weights hash."""
    from .utils import state_dict_digest

    height, width = vqvae.latent_shape
    return {
        "num_vq_embeddings": vqvae.config.num_vq_embeddings,
        "grid_height": height,
        "grid_width": width,
        "sample_size": vqvae.config.sample_size,
        "in_channels": vqvae.config.in_channels,
        "weights_sha256": state_dict_digest(vqvae.state_dict()),
    }


def save_token_dataset(dataset: datasets.DatasetDict, path: str | os.PathLike, identity: dict) -> None:
    """`save_to_disk` plus the tokenizer's identity, written to a temporary folder and renamed (no half datasets)."""
    import json
    import shutil

    final, partial = Path(path), Path(f"{path}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    dataset.save_to_disk(str(partial))
    (partial / TOKENIZER_IDENTITY_FILE).write_text(json.dumps(identity, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)


def load_token_dataset(path: str | os.PathLike, vqvae=None) -> tuple[datasets.DatasetDict, dict]:
    """A token dataset written by `examples/encode_dataset.py` and its tokenizer identity. With `vqvae`, raise a
    `ValueError` unless the tokens came from exactly that tokenizer."""
    import json

    identity_file = Path(path) / TOKENIZER_IDENTITY_FILE
    if not identity_file.is_file():
        raise ValueError(
            f"{path} is not a token dataset from examples/encode_dataset.py (no {TOKENIZER_IDENTITY_FILE})."
        )
    identity = json.loads(identity_file.read_text())
    if vqvae is not None:
        expected = tokenizer_identity(vqvae)
        differing = [key for key in expected if identity.get(key) != expected[key]]
        if differing:
            raise ValueError(
                f"The token dataset at {path} was made by another tokenizer ({', '.join(differing)} differ: "
                f"{ {k: identity.get(k) for k in differing} } vs { {k: expected[k] for k in differing} })."
            )
    return datasets.load_from_disk(str(path)), identity


@torch.no_grad()
def encode_image_dataset(
    vqvae, dataset: datasets.Dataset, accelerator, batch_size: int = 256, resize_mode: str = "resize"
) -> datasets.Dataset:
    """Token grids of an image dataset (`token_ids`: h*w ids in raster order, int16; `label` if present), batched
    and without gradients; under several Accelerate processes each encodes its share and all get the whole result,
    in order."""
    transform = PixelTransform(vqvae.config.sample_size, vqvae.config.in_channels, resize_mode)
    loader = torch.utils.data.DataLoader(
        with_pixel_values(dataset, transform), batch_size=batch_size, collate_fn=collate_pixel_values
    )
    loader = accelerator.prepare_data_loader(loader)  # each process encodes its share, in order
    columns = {"token_ids": [], "label": []}
    for batch in tqdm(loader, desc="Encoding", disable=not accelerator.is_local_main_process):
        token_ids = vqvae.encode_to_ids(batch["pixel_values"]).flatten(1)
        columns["token_ids"].append(accelerator.gather_for_metrics(token_ids).cpu())
        if "label" in batch:
            columns["label"].append(accelerator.gather_for_metrics(batch["label"]).cpu())
    data = {"token_ids": torch.cat(columns["token_ids"]).to(torch.int16).numpy()}
    features = {"token_ids": datasets.Sequence(datasets.Value("int16"))}
    if columns["label"]:
        data["label"] = torch.cat(columns["label"]).numpy()
        features["label"] = dataset.features["label"]
    return datasets.Dataset.from_dict(
        {k: list(v) if k == "token_ids" else v.tolist() for k, v in data.items()}, features=datasets.Features(features)
    )
