"""Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 grey images of 10 clothing classes, read from the IDX files of
Debian's `dataset-fashion-mnist` (`$HF_VQGEN_FASHION_MNIST_DIR` or `/usr/share/datasets/fashion-mnist/`), else the
Hub copy."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import datasets
import numpy as np
from PIL import Image


logger = logging.getLogger(__name__)

FASHION_MNIST = "fashion_mnist"
FASHION_MNIST_DIR_ENV = "HF_VQGEN_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_IDX_PREFIX = {"train": "train", "test": "t10k"}


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


def load_fashion_mnist(split: str, cache_dir: str | None) -> datasets.Dataset:
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


def fashion_mnist_gallery() -> list[Image.Image]:
    """The first test image of each class from the local IDX files (the demo's gallery); empty when they are absent."""
    images_path, labels_path = _idx_paths("test")
    if not (images_path.is_file() and labels_path.is_file()):
        return []
    labels = _read_idx(labels_path, offset=8)
    images = _read_idx(images_path, offset=16).reshape(-1, 28, 28)
    firsts = [int(np.flatnonzero(labels == label)[0]) for label in np.unique(labels)]
    return [Image.fromarray(images[i]) for i in firsts]
