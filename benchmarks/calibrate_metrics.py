#!/usr/bin/env python
"""Calibration of the distribution metrics on Fashion-MNIST: what FID / KID / precision / recall read for real
images (train split vs the test split: the floor a perfect generator reaches) and for blurred and noisy copies.

    python benchmarks/calibrate_metrics.py [--feature_extractor benchmarks/assets/fashion_mnist_classifier]

Writes benchmarks/results/metric_calibration.json and .md (a table) and prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_tokenizer_recipe import machine  # noqa: E402

from hf_vqgen.evaluation import score_images  # noqa: E402
from hf_vqgen.feature_extractors import load_feature_extractor, load_split_images  # noqa: E402


COLUMNS = ("fid", "kid", "precision", "recall", "classifier_score")


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


def markdown_table(rows: dict[str, dict]) -> str:
    lines = ["| image set (vs the 10k test split) | n | FID | KID | precision | recall | classifier score |"]
    lines.append("|---|---|---|---|---|---|---|")
    for name, metrics in rows.items():
        # FID and KID of identical sets come out as -0.00 or so from float error: shown as 0
        cells = [f"{metrics[c]:.4f}" if c == "kid" else f"{metrics[c]:.2f}" for c in COLUMNS]
        cells = [cell.replace("-0.00", "0.00") if set(cell) <= set("-0.") else cell for cell in cells]
        lines.append(f"| {name} | {metrics['num_samples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--feature_extractor", default=str(ROOT / "benchmarks" / "assets" / "fashion_mnist_classifier")
    )
    parser.add_argument("--num_images", type=int, default=10000)
    parser.add_argument("--results_dir", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    extractor = load_feature_extractor(args.feature_extractor)
    train = load_split_images("fashion_mnist", "train", 28, 1, args.num_images)
    test = load_split_images("fashion_mnist", "test", 28, 1, args.num_images)
    rows, start = {}, time.monotonic()
    for name, images in candidate_sets(train, test).items():
        rows[name] = score_images(images, extractor, "fashion_mnist", "test", max_reference=args.num_images)
    report = {"benchmark": "metric_calibration", "machine": machine(), "seconds": time.monotonic() - start}
    report["feature_extractor"] = args.feature_extractor
    report["rows"] = rows
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "metric_calibration.json").write_text(json.dumps(report, indent=2))
    (results_dir / "metric_calibration.md").write_text(markdown_table(rows) + "\n")
    print(json.dumps(report, indent=2))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
