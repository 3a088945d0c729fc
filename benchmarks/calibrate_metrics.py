#!/usr/bin/env python
"""Calibration of the distribution metrics on a dataset (default Fashion-MNIST): what FID / KID / precision / recall
read for real images (train split vs the test split: the floor a perfect generator reaches) and for blurred and noisy
copies.

    python benchmarks/calibrate_metrics.py [--tokenizer benchmarks/results/runs/recipe]
    python benchmarks/calibrate_metrics.py --dataset_name fashion_mnist --resolution 28 --num_channels 1

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
from common import RESULTS, RUNS, calibration_table, dataset_arguments, machine, write_report

from hf_vqgen import VQVAEModel
from hf_vqgen.evaluation import score_images
from hf_vqgen.feature_extractors import load_feature_extractor, load_split_images


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


def candidate_sets(train: torch.Tensor, test: torch.Tensor) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)

    def noisy(sigma: float) -> torch.Tensor:
        return (train + sigma * torch.randn(train.shape, generator=generator)).clamp(-1, 1)

    return {
        "test split itself (sanity: 0)": test,
        "train split (the floor)": train,
        "train split, first 1,000 only": train[:1000],
        "train, Gaussian blur sigma=0.5 px": gaussian_blur(train, 0.5),
        "train, Gaussian blur sigma=1 px": gaussian_blur(train, 1.0),
        "train, Gaussian noise sigma=0.1": noisy(0.1),
        "train, Gaussian noise sigma=0.3": noisy(0.3),
    }


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
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
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
    return args


def main() -> None:
    args = parse_args()
    extractor = load_feature_extractor(args.feature_extractor)
    size = (args.resolution, args.num_channels, args.num_images)
    train = load_split_images(args.dataset_name, "train", *size)
    test = load_split_images(args.dataset_name, "test", *size)
    rows, start = {}, time.monotonic()
    for name, images in candidate_sets(train, test).items():
        rows[name] = score_images(images, extractor, args.dataset_name, "test", max_reference=args.num_images)
    report = {
        "benchmark": "metric_calibration",
        "machine": machine(),
        "scored": args.dataset_name,  # its train split, real and degraded, vs its test split
        "settings": vars(args),
        "seconds": time.monotonic() - start,
        "feature_extractor": args.feature_extractor,
        "rows": rows,
    }
    write_report(args.results_dir / "metric_calibration.json", report)
    table = calibration_table(rows)
    (args.results_dir / "metric_calibration.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
