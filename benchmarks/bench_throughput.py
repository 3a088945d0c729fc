#!/usr/bin/env python
"""Throughput of the tokenizer, measured side by side in one run: tokenization (encode_to_ids, no grad, images/s)
per batch size, and training (samples/s) of the recipe configuration. Later priors add their sampling here.

    python benchmarks/bench_throughput.py [--tokenizer benchmarks/results/runs/recipe]

Ratios between rows are what a noisy shared machine can compare; the machine is recorded with them. Writes
benchmarks/results/throughput.json and throughput.png (images/s vs batch size).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))
import train_vqvae  # noqa: E402
from bench_tokenizer_recipe import RECIPE, machine  # noqa: E402

from hf_vqgen import VQVAEModel  # noqa: E402


RESULTS = ROOT / "benchmarks" / "results"


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after two warm-up calls (the allocator's first steps are slow)."""
    fn(), fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return sorted(seconds)[len(seconds) // 2]


def tokenization_rows(model: VQVAEModel, batch_sizes: list[int], repeats: int) -> list[dict]:
    model.eval()
    rows = []
    for batch_size in batch_sizes:
        images = torch.rand(batch_size, model.config.in_channels, 28, 28) * 2 - 1
        encode = timed(partial(model.encode_to_ids, images), repeats)
        token_ids = model.encode_to_ids(images)
        decode = timed(partial(model.decode_ids, token_ids), repeats)
        rows.append(
            {
                "batch_size": batch_size,
                "encode_images_per_s": batch_size / encode,
                "decode_images_per_s": batch_size / decode,
            }
        )
    return rows


def training_row(model: VQVAEModel, batch_size: int, repeats: int) -> dict:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    images = torch.rand(batch_size, model.config.in_channels, 28, 28) * 2 - 1

    def step():
        output = model(images)
        (torch.nn.functional.mse_loss(output.sample, images) + output.commit_loss).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return {"batch_size": batch_size, "train_samples_per_s": batch_size / timed(step, repeats)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    sizes = [row["batch_size"] for row in rows]
    axis.plot(sizes, [row["encode_images_per_s"] for row in rows], marker="o", label="encode_to_ids")
    axis.plot(sizes, [row["decode_images_per_s"] for row in rows], marker="o", label="decode_ids")
    axis.set(xscale="log", xlabel="batch size", ylabel="images / s", title="Tokenizer throughput (CPU)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--tokenizer", default=None, help="A trained tokenizer folder (default: a fresh recipe model)."
    )
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    recipe_args = train_vqvae.parse_args([f"@{RECIPE}"])
    model = VQVAEModel.from_pretrained(args.tokenizer) if args.tokenizer else train_vqvae.build_model(recipe_args)
    report = {
        "benchmark": "throughput",
        "machine": machine(),
        "tokenizer": args.tokenizer or "recipe config, untrained",
    }
    with torch.no_grad():
        report["tokenization"] = tokenization_rows(model, args.batch_sizes, args.repeats)
    report["training"] = training_row(model, recipe_args.train_batch_size, args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(report, indent=2))
    plot(report["tokenization"], RESULTS / "throughput.png")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
