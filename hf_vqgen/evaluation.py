"""Scoring image sets against a dataset split: backbone features + distribution metrics, in one call."""

from __future__ import annotations

import torch

from .feature_extractors import FeatureExtractor, extract_features, reference_features
from .metrics import distribution_metrics


def score_images(
    images: torch.Tensor,
    extractor: FeatureExtractor,
    dataset_name: str,
    split: str = "test",
    max_reference: int | None = None,
) -> dict[str, float]:
    """FID / KID / precision / recall (and the classifier score) of `images` (N, C, H, W) in [-1, 1] against the
    cached features of `dataset_name`'s `split` at the same resolution and channel count."""
    if images.ndim != 4:
        raise ValueError(f"`images` must be (N, C, H, W), got shape {tuple(images.shape)}.")
    resolution, num_channels = images.shape[-1], images.shape[1]
    if images.shape[-2] != resolution:
        raise ValueError(f"`images` must be square, got {tuple(images.shape[-2:])}.")
    reference, _ = reference_features(extractor, dataset_name, split, resolution, num_channels, max_reference)
    features, logits = extract_features(extractor, images, desc="Sample features")
    return {**distribution_metrics(features, reference, logits), "feature_extractor": extractor.identity}
