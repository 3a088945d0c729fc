#!/usr/bin/env python
"""Calibration of the distribution metrics on a dataset (default Fashion-MNIST): what FID / KID / precision / recall
(and recognisability, from the feature network's primary head) read for real images (train split vs the test split:
the floor a perfect generator reaches), for blurred, noisy and downsampled copies, for copies whose structure is broken
(chimeras of the top and bottom halves of two different images, 16-px patches shuffled) and for the tokenizer's
reconstructions. A feature space in which chimeras or shuffled patches score as well as a 1-px blur cannot judge
generated shapes.

    python benchmarks/calibrate_metrics.py [--tokenizer benchmarks/results/runs/recipe]
    python benchmarks/calibrate_metrics.py --dataset_name fashion_mnist --resolution 28 --num_channels 1
    python benchmarks/calibrate_metrics.py --tokenizer pretrained/emoji-tokenizer --class_mix even \
        --label_columns label style --num_images 2000 --output_name metric_calibration_shape_even

The train images are a seeded random subset (the split's own class mix) or, with `--class_mix even`, drawn with the
classes (combined over `--label_columns`, as a prior's class token) cycled evenly, as the sampling benchmarks ask a
class-conditional prior for them: the floor and the degraded rows of that protocol, scored against the same test
split.

Images are scored on the dataset the tokenizer `--tokenizer` was trained on, at its resolution and channel count (the
scale the generators are scored at), else as given. Writes benchmarks/results/metric_calibration.json and .md (a
table) and prints the JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import (
    RESULTS,
    RUNS,
    calibration_table,
    class_sizes,
    classes_cycled,
    dataset_arguments,
    machine,
    portable_path,
    write_report,
)

from hf_vqgen import VQVAEModel, load_image_dataset
from hf_vqgen.evaluation import evaluate_tokenizer, head_agreement, score_images
from hf_vqgen.evaluation.features import load_feature_extractor, load_split_images


ASSETS = Path(__file__).resolve().parent / "assets"


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.device)
    channels = images.shape[1]
    padded = F.pad(images, (radius,) * 4, mode="replicate")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def chimeras(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Top half of each image over the bottom half of another (a random derangement-like pairing)."""
    partner = (torch.arange(len(images)) + torch.randint(1, len(images), (len(images),), generator=generator)) % len(
        images
    )
    half = images.shape[-2] // 2
    return torch.cat([images[..., :half, :], images[partner][..., half:, :]], dim=-2)


def patch_shuffle(images: torch.Tensor, patch: int, generator: torch.Generator) -> torch.Tensor:
    """Each image cut into `patch` x `patch` squares, put back in a random order (one order per image)."""
    n, c, h, w = images.shape
    rows, columns = h // patch, w // patch
    patches = (
        images.reshape(n, c, rows, patch, columns, patch).permute(0, 2, 4, 1, 3, 5).reshape(n, rows * columns, -1)
    )
    order = torch.argsort(torch.rand(n, rows * columns, generator=generator), dim=1)
    shuffled = patches.gather(1, order[..., None].expand_as(patches))
    return shuffled.reshape(n, rows, columns, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def downsampled(images: torch.Tensor, factor: int) -> torch.Tensor:
    size = images.shape[-1]
    small = F.interpolate(images, size=size // factor, mode="area")
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False).clamp(-1, 1)


def candidate_sets(
    train: torch.Tensor, test: torch.Tensor, tokenizer=None
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The image sets to score, and the names of those made image by image from `train` (each keeps its image's
    classes)."""
    generator = torch.Generator().manual_seed(0)

    def noisy(sigma: float) -> torch.Tensor:
        return (train + sigma * torch.randn(train.shape, generator=generator)).clamp(-1, 1)

    floor = "train split (the floor)"
    per_image = {
        floor: train,
        "train, Gaussian blur sigma=0.5 px": gaussian_blur(train, 0.5),
        "train, Gaussian blur sigma=1 px": gaussian_blur(train, 1.0),
        "train, Gaussian noise sigma=0.1": noisy(0.1),
        "train, Gaussian noise sigma=0.3": noisy(0.3),
        "train, downsampled 2x and back": downsampled(train, 2),
        "train, downsampled 4x and back": downsampled(train, 4),
    }
    sets = {
        "test split itself (sanity: 0)": test,
        floor: train,
        f"train split, {min(1000, len(train) // 2):,} of them only": train[: min(1000, len(train) // 2)],
        **per_image,  # the floor keeps its place
        "train, chimeras (top / bottom halves of two images)": chimeras(train, generator),
    }
    if min(train.shape[-2:]) >= 32:  # 16-px patches need room to move
        sets["train, 16-px patches shuffled"] = patch_shuffle(train, 16, generator)
    if tokenizer is not None:
        with torch.no_grad():
            per_image["train, the tokenizer's reconstructions"] = sets["train, the tokenizer's reconstructions"] = (
                evaluate_tokenizer(tokenizer, train.split(256), keep_reconstructions=True)[0]
            )
    return sets, set(per_image)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", default=None, help="Default: the one --tokenizer was trained on.")
    parser.add_argument("--tokenizer", type=Path, default=RUNS / "recipe", help="Its config sets the image size.")
    parser.add_argument("--resolution", type=int, default=None, help="Without a --tokenizer folder.")
    parser.add_argument("--num_channels", type=int, default=None, choices=(1, 3), help="Without a --tokenizer folder.")
    parser.add_argument(
        "--feature_extractor", default=None, help="Default: benchmarks/assets/<dataset_name>_classifier."
    )
    parser.add_argument("--num_images", type=int, default=10000)
    parser.add_argument(
        "--class_mix", default="split", choices=("split", "even"),
        help="Train images in the split's own class proportions, or with the classes cycled evenly.",
    )  # fmt: skip
    parser.add_argument(
        "--label_columns", nargs="+", default=None,
        help="Class columns (combined as a prior's class token) to cycle with --class_mix even (default: label) and "
        "to read the feature network's class agreement for, on the rows that keep each train image's class.",
    )  # fmt: skip
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    parser.add_argument("--output_name", default=None, help="Results file stem (default metric_calibration).")
    args = parser.parse_args(argv)
    if (args.tokenizer / "config.json").is_file():
        config = VQVAEModel.load_config(args.tokenizer)
        args.resolution = args.resolution or config["sample_size"]
        args.num_channels = args.num_channels or config["in_channels"]
        dataset = dataset_arguments(args.tokenizer, scoring=True)
        args.dataset_name = args.dataset_name or (dataset[1] if dataset else None)
    else:
        args.tokenizer = None
    if args.resolution is None or args.num_channels is None or args.dataset_name is None:
        parser.error("no trained tokenizer at --tokenizer: pass --dataset_name, --resolution and --num_channels")
    args.feature_extractor = args.feature_extractor or str(ASSETS / f"{args.dataset_name}_classifier")
    if args.class_mix == "even" and not args.label_columns:
        args.label_columns = ["label"]
    return args


def main() -> None:
    args = parse_args()
    extractor = load_feature_extractor(args.feature_extractor)
    size = (args.resolution, args.num_channels, args.num_images)
    train = load_split_images(args.dataset_name, "train", *size[:2])
    all_labels = None  # every train image's classes (label columns combined), read once
    if args.label_columns:
        all_labels = load_image_dataset(args.dataset_name, split="train", label_column=args.label_columns)["label"]
        all_labels = torch.tensor(all_labels)
    rows_kept = torch.arange(len(train))
    if args.class_mix == "even":
        rows_kept = classes_cycled(all_labels, args.num_images)
    elif len(train) > args.num_images:  # a seeded random subset: a split's first rows may be one style or class
        rows_kept = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.num_images]
    train = train[rows_kept]
    labels, sizes = None, None
    if all_labels is not None:  # the classes each train image has: how often the classifier names them (a ceiling)
        labels, sizes = all_labels[rows_kept], class_sizes(args.dataset_name, args.label_columns)
    test = load_split_images(args.dataset_name, "test", *size[:2])
    rows, start = {}, time.monotonic()
    tokenizer = VQVAEModel.from_pretrained(args.tokenizer).eval() if args.tokenizer else None
    sets, per_image = candidate_sets(train, test, tokenizer)
    for name, images in sets.items():
        rows[name] = score_images(images, extractor, args.dataset_name, "test", max_reference=args.num_images)
        if labels is not None and name in per_image:
            agreement = head_agreement(extractor, images, sizes, labels)
            if agreement:
                rows[name]["conditioning"] = agreement
    report = {
        "benchmark": "metric_calibration",
        "machine": machine(),
        "scored": args.dataset_name,  # its train split, real and degraded, vs its test split
        "tokenizer": portable_path(args.tokenizer) if args.tokenizer else None,
        "settings": vars(args),
        "seconds": time.monotonic() - start,
        "feature_extractor": args.feature_extractor,
        "rows": rows,
    }
    stem = args.output_name or "metric_calibration"
    write_report(args.results_dir / f"{stem}.json", report)
    table = calibration_table(rows)
    (args.results_dir / f"{stem}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
