"""Backbones whose feature spaces the distribution metrics (FID, KID, precision / recall) are computed in, and the
cached features of reference dataset splits.

- `ClassifierFeatureExtractor`: an `ImageClassifier` or a `ShapeClassifier` trained on the dataset itself
  (`examples/train_feature_extractor.py`; the Fashion-MNIST one ships in `benchmarks/assets/fashion_mnist_classifier/`,
  the emoji ones in `benchmarks/assets/emoji_classifier/` (category x style, global pooling) and
  `benchmarks/assets/emoji_shape_classifier/` (emoji identities, layout-keeping: the gauge that sees shape)).
- `InceptionFeatureExtractor`: the standard FID network (torch-fidelity's InceptionV3, 2048-d pool features) from a
  local weights file. Nothing is downloaded: without the file it is a clear error, never a hang.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..data.images import PixelTransform, load_image_dataset, with_pixel_values
from ..models import ImageClassifier, ShapeClassifier
from ..utils import state_dict_digest


logger = logging.getLogger(__name__)
CACHE_ENV = "HF_VQGEN_CACHE"
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name


class FeatureExtractor(Protocol):
    identity: str  # names the backbone and its weights in cache keys

    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (B, C, H, W) in [-1, 1] -> features (B, D) and class logits (B, K) or None."""


class ClassifierFeatureExtractor:
    """Penultimate-layer features and (primary head) logits of an [`ImageClassifier`] or [`ShapeClassifier`] (eval
    mode, no grad)."""

    def __init__(self, classifier: ImageClassifier | ShapeClassifier):
        self.classifier = classifier.eval()
        self.identity = f"classifier-{state_dict_digest(classifier.state_dict(), length=12)}"

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> ClassifierFeatureExtractor:
        classes = {"ImageClassifier": ImageClassifier, "ShapeClassifier": ShapeClassifier}
        name = ImageClassifier.load_config(path).get("_class_name", "ImageClassifier")
        if name not in classes:
            raise ValueError(f"{path} holds a {name!r}, not one of the feature networks {sorted(classes)}.")
        return cls(classes[name].from_pretrained(path))

    @torch.no_grad()
    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.classifier.parameters()).device
        features, logits = self.classifier(pixel_values.to(device))
        return features.float().cpu(), logits.float().cpu()


class InceptionFeatureExtractor:
    """torch-fidelity's FID InceptionV3 (`pip install torch-fidelity`) from a local weights file: `weights_path`, or
    `$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`. Grayscale inputs are repeated to RGB."""

    def __init__(self, weights_path: str | os.PathLike | None = None):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as error:
            raise ImportError(
                "InceptionFeatureExtractor needs torch-fidelity: `pip install torch-fidelity`."
            ) from error
        path = (
            Path(weights_path) if weights_path else Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE
        )
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception weights not found at {path}. They are never downloaded here: fetch "
                f"{INCEPTION_WEIGHTS_FILE} (torch-fidelity's release assets) on a machine with internet and pass "
                "`weights_path`, or use a ClassifierFeatureExtractor."
            )
        self.network = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
        ).eval()
        self.identity = "inception-v3-compat"

    @torch.no_grad()
    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = ((pixel_values.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        features, logits = self.network(images)
        return features.float().cpu(), logits.float().cpu()


def load_feature_extractor(name_or_path: str | os.PathLike) -> FeatureExtractor:
    """`"inception"` (local weights, see `InceptionFeatureExtractor`) or the folder of a saved `ImageClassifier`."""
    if str(name_or_path) == "inception":
        return InceptionFeatureExtractor()
    if not (Path(name_or_path) / "config.json").is_file():
        raise ValueError(f"`feature_extractor` {str(name_or_path)!r} is neither 'inception' nor a classifier folder.")
    return ClassifierFeatureExtractor.from_pretrained(name_or_path)


def extract_features(
    extractor: FeatureExtractor, images: torch.Tensor, batch_size: int = 500, desc: str = "Features"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) and logits (N, K) or None of images (N, C, H, W) in [-1, 1], in batches."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"`images` must be a non-empty (N, C, H, W) tensor, got shape {tuple(images.shape)}.")
    if not torch.isfinite(images).all():
        raise ValueError("`images` contains NaN or infinite values.")
    outputs = [extractor(images[i : i + batch_size]) for i in tqdm(range(0, len(images), batch_size), desc=desc)]
    features = torch.cat([features for features, _ in outputs])
    logits = None if outputs[0][1] is None else torch.cat([logits for _, logits in outputs])
    return features, logits


def load_split_images(
    dataset_name: str, split: str, resolution: int, num_channels: int, max_images: int | None = None
) -> torch.Tensor:
    """A dataset split as one (N, C, H, W) tensor in [-1, 1] (resized as `PixelTransform` does)."""
    dataset = load_image_dataset(dataset_name, split=split)
    if max_images is not None:
        dataset = dataset.select(range(min(max_images, len(dataset))))
    rows = with_pixel_values(dataset, PixelTransform(resolution, num_channels))
    return torch.stack([rows[i]["pixel_values"] for i in range(len(rows))])


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "hf_vqgen")) / "reference_features"


def reference_features(
    extractor: FeatureExtractor,
    dataset_name: str,
    split: str,
    resolution: int,
    num_channels: int,
    max_images: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (and logits) of a dataset split, computed once per backbone and cached as safetensors in
    `$HF_VQGEN_CACHE/reference_features/` (default `~/.cache/hf_vqgen/`)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_name)
    count = "all" if max_images is None else str(max_images)
    path = cache_dir() / f"{extractor.identity}-{slug}-{split}-{resolution}x{num_channels}-{count}.safetensors"
    if path.is_file():
        cached = load_file(path)
        return cached["features"], cached.get("logits")
    images = load_split_images(dataset_name, split, resolution, num_channels, max_images)
    features, logits = extract_features(extractor, images, desc=f"Reference features ({split})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": features.contiguous()} | ({"logits": logits.contiguous()} if logits is not None else {})
    temporary = path.with_suffix(".partial")
    save_file(tensors, temporary)
    os.replace(temporary, path)  # never a half-written cache entry
    logger.info("Cached reference features at %s.", path)
    return features, logits
