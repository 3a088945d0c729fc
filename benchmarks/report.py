#!/usr/bin/env python
"""Collect benchmarks/results/*.json into benchmarks/results/README.md (tables) and a quality-vs-time plot.

python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path


RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def tokenizer_section(report: dict) -> list[str]:
    lines = [
        "## Tokenizer recipe",
        "",
        "| variant | steps | minutes | test PSNR (dB) | SSIM | codes used | perplexity |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for name, run in report["variants"].items():
        ssim = f"{run['ssim']:.3f}" if "ssim" in run else "–"
        lines.append(
            f"| {name} | {run['train_steps']} | {run['train_minutes']:.1f} | {run['psnr']:.2f} | {ssim} "
            f"| {run['codebook_usage']:.0%} | {run['perplexity']:.0f} |"
        )
    return lines


def throughput_section(report: dict) -> list[str]:
    lines = ["## Tokenizer throughput", "", "| batch size | encode images/s | decode images/s |", "|---|---|---|"]
    lines += [
        f"| {row['batch_size']} | {row['encode_images_per_s']:.0f} | {row['decode_images_per_s']:.0f} |"
        for row in report["tokenization"]
    ]
    training = report["training"]
    lines += ["", f"Training: {training['train_samples_per_s']:.0f} samples/s at batch {training['batch_size']}."]
    return lines


def generation_section(baseline: dict) -> list[str]:
    metrics, sampling = baseline["metrics"], baseline["sampling"]
    lines = ["## Generators (same evaluator, same sample count)", ""]
    lines += ["| model | train minutes | n | FID | KID | precision | recall | sampling images/s |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    lines.append(
        f"| pixel DDPM baseline (UNet2DModel, DDIM-50) | {baseline['training']['train_minutes']:.1f} "
        f"| {metrics['num_samples']} | {metrics['fid']:.2f} | {metrics['kid']:.4f} | {metrics['precision']:.2f} "
        f"| {metrics['recall']:.2f} | {sampling['images_per_second']:.2f} |"
    )
    return lines


def main() -> None:
    sections = ["# Benchmark results", "", "Written by `benchmarks/report.py` from the JSON files beside it.", ""]
    builders = {
        "tokenizer_recipe": tokenizer_section,
        "throughput": throughput_section,
        "baseline_ddpm": generation_section,
    }
    for name, build in builders.items():
        report = _load(name)
        if report is not None:
            sections += build(report) + [""]
    calibration = RESULTS / "metric_calibration.md"
    if calibration.is_file():
        sections += ["## Metric calibration (Fashion-MNIST classifier features)", "", calibration.read_text()]
    (RESULTS / "README.md").write_text("\n".join(sections))
    print("\n".join(sections))


if __name__ == "__main__":
    main()
