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


def generator_rows() -> list[dict]:
    """One row per generator benchmark present: name, train minutes, metrics, sampling images/s."""
    rows = []
    prior = _load("prior_recipe")
    if prior is not None:
        minutes = prior["train_minutes"] + _load("tokenizer_recipe")["variants"]["recipe"]["train_minutes"]
        rows.append({"name": "VQ-VAE + GPT-2 prior (recipes)", "minutes": minutes, "metrics": prior["samples"],
                     "images_per_second": prior["sampling"]["images_per_second"]})  # fmt: skip
        if "guided" in prior:
            rows.append({"name": f"VQ-VAE + GPT-2 prior, guidance {prior['guided']['guidance_scale']}",
                         "minutes": minutes, "metrics": prior["guided"]["samples"],
                         "images_per_second": float("nan")})  # fmt: skip
        # the same pipelines scored at the baseline's sample count (FID is biased upwards at small n)
        for name, label in (("eval_ar_2k", "GPT-2 prior"), ("eval_ar_guided_2k", "GPT-2 prior, guidance 1.5"),
                            ("eval_diffusion_2k", "discrete diffusion (absorbing, 16 steps)")):  # fmt: skip
            small = _load(name)
            if small is not None:
                rows.append({"name": f"VQ-VAE + {label}", "minutes": minutes, "metrics": small["metrics"],
                             "images_per_second": small["timings"]["images_per_second"]})  # fmt: skip
    diffusion = _load("diffusion_recipe")
    if diffusion is not None and prior is not None:
        for row in diffusion["rows"][1:]:
            name = f"VQ-VAE + discrete diffusion, {row['prior']}, {row['steps']} steps"
            metrics = {"num_samples": diffusion["num_samples"]} | row
            rows.append({"name": name, "minutes": row["train_minutes"] + minutes - prior["train_minutes"],
                         "metrics": metrics, "images_per_second": row["images_per_second_batch100"]})  # fmt: skip
    baseline = _load("baseline_ddpm")
    if baseline is not None:
        rows.append({"name": "pixel DDPM baseline (UNet2DModel, DDIM-50)", "minutes": baseline["training"]["train_minutes"],
                     "metrics": baseline["metrics"], "images_per_second": baseline["sampling"]["images_per_second"]})  # fmt: skip
    return rows


def _speed(images_per_second: float) -> str:
    return "–" if images_per_second != images_per_second else f"{images_per_second:.1f}"  # NaN: not timed


def generation_section(rows: list[dict]) -> list[str]:
    lines = ["## Generators (same evaluator; compare at equal n)", ""]
    lines += ["| model | train minutes | n | FID | KID | precision | recall | sampling images/s |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['name']} | {row['minutes']:.1f} | {m['num_samples']} | {m['fid']:.2f} | {m['kid']:.4f} "
            f"| {m['precision']:.2f} | {m['recall']:.2f} | {_speed(row['images_per_second'])} |"
        )
    return lines


def diffusion_section(report: dict) -> list[str]:
    lines = ["## Discrete diffusion vs the autoregressive prior (same tokens, same training steps)", ""]
    lines += ["| prior | steps | train minutes | FID | FID / AR | precision | recall "
              "| images/s, batch 100 | images/s, batch 1 |"]  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        ratio = f"{row['fid_over_ar']:.2f}" if "fid_over_ar" in row else "1"
        lines.append(
            f"| {row['prior']} | {row['steps']} | {row['train_minutes']:.1f} | {row['fid']:.2f} | {ratio} "
            f"| {row['precision']:.2f} | {row['recall']:.2f} | {row['images_per_second_batch100']:.1f} "
            f"| {row['images_per_second_batch1']:.1f} |"
        )
    return lines + ["", "![FID vs sampling time](fid_vs_sampling_time.png)"]


def plot_fid_vs_speed(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for row in rows:
        if row["images_per_second"] == row["images_per_second"] and row["metrics"]["num_samples"] >= 10000:
            axis.scatter(row["images_per_second"], row["metrics"]["fid"], label=row["name"])
    axis.set(xscale="log", xlabel="sampling images / s (CPU)", ylabel="FID, 10k samples (classifier features)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    sections = ["# Benchmark results", "", "Written by `benchmarks/report.py` from the JSON files beside it.", ""]
    builders = {
        "tokenizer_recipe": tokenizer_section,
        "throughput": throughput_section,
        "diffusion_recipe": diffusion_section,
    }
    for name, build in builders.items():
        report = _load(name)
        if report is not None:
            sections += build(report) + [""]
    rows = generator_rows()
    if rows:
        sections += generation_section(rows) + ["", "![FID vs sampling speed](fid_vs_speed.png)", ""]
        plot_fid_vs_speed(rows, RESULTS / "fid_vs_speed.png")
    calibration = RESULTS / "metric_calibration.md"
    if calibration.is_file():
        sections += ["## Metric calibration (Fashion-MNIST classifier features)", "", calibration.read_text()]
    (RESULTS / "README.md").write_text("\n".join(sections))
    print("\n".join(sections))


if __name__ == "__main__":
    main()
