"""Scoring generated images, shared by scripts and benchmarks: the seeded "classes cycled" sampling loop, image sets
scored against a dataset split, conditioning agreement and nearest training images."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from .features import FeatureExtractor, extract_features, reference_features
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


def condition_accuracy(logits: torch.Tensor, labels: torch.Tensor, column_sizes: dict[str, int]) -> dict[str, float]:
    """How often a classifier over the same classes names the class each image was conditioned on (or, for real
    images, carries): overall, and per label column when a class is a combination of several columns, as
    `hf_vqgen.data.combine_label_columns` encodes it (`((i_1 * n_2 + i_2) * n_3 + i_3) ...`)."""
    num_classes = math.prod(column_sizes.values())
    if logits.ndim != 2 or logits.shape[1] != num_classes or len(logits) != len(labels):
        raise ValueError(
            f"`logits` must be (N, {num_classes}) for {len(labels)} labels of columns {column_sizes}, "
            f"got {tuple(logits.shape)}."
        )
    predicted, labels = logits.argmax(dim=1).cpu(), torch.as_tensor(labels).cpu()
    figures = {"accuracy": float((predicted == labels).double().mean())}
    if len(column_sizes) > 1:
        for name, size in reversed(column_sizes.items()):  # the last column varies fastest
            figures[f"accuracy_{name}"] = float((predicted % size == labels % size).double().mean())
            predicted, labels = predicted // size, labels // size
    return figures


def split_combined_labels(labels: torch.Tensor, column_sizes: dict[str, int]) -> dict[str, torch.Tensor]:
    """Combined class ids (as `hf_vqgen.data.combine_label_columns` encodes them, the last column fastest) -> each
    column's own ids."""
    parts = {}
    for name, size in reversed(column_sizes.items()):
        parts[name], labels = labels % size, labels // size
    return dict(reversed(parts.items()))


@torch.no_grad()
def head_agreement(
    extractor, images: torch.Tensor, column_sizes: dict[str, int], labels: torch.Tensor | None = None
) -> dict[str, float] | None:
    """How often `extractor`'s classifier names the class each image was asked for, images (N, C, H, W) sampled for
    `labels` (default: classes cycled, as `sample_images` draws them: image i asked for class i mod num_classes) over
    the combinations of the label columns `column_sizes`. A classifier over the same combinations is read as
    `condition_accuracy` reads it; a `ShapeClassifier` by its heads named after the columns. None when the classifier
    knows neither."""
    if labels is None:
        labels = torch.arange(len(images)) % math.prod(column_sizes.values())
    labels = torch.as_tensor(labels)
    classifier = getattr(extractor, "classifier", None)
    heads = getattr(getattr(classifier, "config", None), "head_names", None)
    if heads is not None and set(column_sizes) <= set(heads):
        wanted = split_combined_labels(labels, column_sizes)
        device = next(classifier.parameters()).device
        predicted = {name: [] for name in column_sizes}
        for chunk in images.split(500):
            logits = classifier.head_logits(chunk.to(device))
            for name in column_sizes:
                predicted[name].append(logits[name].argmax(-1).cpu())
        figures = {f"accuracy_{name}": float((torch.cat(predicted[name]) == wanted[name]).double().mean())
                   for name in column_sizes}  # fmt: skip
        both = torch.stack([torch.cat(predicted[n]) == wanted[n] for n in column_sizes]).all(0)
        return {"accuracy": float(both.double().mean()), **figures}
    _, logits = extract_features(extractor, images, desc="Sample classes")
    if logits is None or logits.shape[1] != math.prod(column_sizes.values()):
        return None
    return condition_accuracy(logits, labels, column_sizes)


@torch.no_grad()
def nearest_training_images(
    images: torch.Tensor, extractor: FeatureExtractor, dataset_name: str, reference_split: str = "test"
) -> dict:
    """Memorisation check: for each image (N, C, H, W) in [-1, 1], its nearest training image in `extractor`'s
    feature space. Its distance is compared with how far held-out images of `reference_split` lie from the training
    set: a sample much closer to a training image than held-out images ever are is a likely copy.

    Returns the figures (medians, the share of samples closer than the closest 1% of held-out images) and, under
    `"nearest_indices"`, each image's nearest training index (for a side-by-side figure)."""
    resolution, num_channels = images.shape[-1], images.shape[1]
    train, _ = reference_features(extractor, dataset_name, "train", resolution, num_channels)
    held_out, _ = reference_features(extractor, dataset_name, reference_split, resolution, num_channels)
    features, _ = extract_features(extractor, images, desc="Sample features")
    train = train.double()

    def nearest(queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chunks = [torch.cdist(chunk.double(), train).min(dim=1) for chunk in queries.split(1000)]
        return torch.cat([c.values for c in chunks]), torch.cat([c.indices for c in chunks])

    sample_distance, indices = nearest(features)
    held_out_distance, _ = nearest(held_out)
    threshold = torch.quantile(held_out_distance, 0.01)
    return {
        "nn_distance_median": float(sample_distance.median()),
        "nn_distance_median_held_out": float(held_out_distance.median()),
        "share_closer_than_held_out_1pct": float((sample_distance < threshold).double().mean()),
        "num_train": train.shape[0],
        "nearest_indices": indices.tolist(),
    }


@torch.no_grad()
def sample_images(
    pipeline, num_samples: int, batch_size: int, seed: int, class_labels: list[int] | None = None, **sampling
) -> tuple[torch.Tensor, list]:
    """`num_samples` images (N, C, H, W) in [-1, 1] from `pipeline` (either prior), for a conditional prior asked for
    `class_labels` (one per sample; default: classes cycled evenly), all drawn from one generator seeded with `seed`;
    also each call's `num_steps_run` (None for the autoregressive pipeline). `sampling` goes to the pipeline's
    `__call__`."""
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"`num_samples` and `batch_size` must be >= 1, got {num_samples} and {batch_size}.")
    if class_labels is not None and len(class_labels) != num_samples:
        raise ValueError(f"`class_labels` must hold one class per sample ({num_samples}), got {len(class_labels)}.")
    pipeline.set_progress_bar_config(disable=True)
    num_classes = pipeline.layout.num_classes
    generator = torch.Generator(device=pipeline.device).manual_seed(seed)
    chunks, steps_run = [], []
    for start in tqdm(range(0, num_samples, batch_size), desc="Sampling"):
        count = min(batch_size, num_samples - start)
        labels = (torch.arange(start, start + count) % num_classes).tolist() if num_classes else None
        if class_labels is not None:
            labels = [int(label) for label in class_labels[start : start + count]]
        out = pipeline(count, class_labels=labels, generator=generator, output_type="pt", **sampling)
        chunks.append(out.images * 2 - 1)
        steps_run.append(getattr(out, "num_steps_run", None))
    return torch.cat(chunks), steps_run
