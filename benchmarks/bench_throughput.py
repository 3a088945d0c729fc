#!/usr/bin/env python
"""Throughput of a trained tokenizer, measured side by side in one run: tokenization (encode_to_ids, no grad,
images/s) per batch size, and training steps (samples/s) at the batch size it was trained with. Images are random,
at the tokenizer's own resolution and channel count (its config).

    python benchmarks/bench_throughput.py [--tokenizer benchmarks/results/runs/recipe]

Ratios between rows are what a noisy shared machine can compare; the machine is recorded with them. Writes
benchmarks/results/throughput.json and throughput.png (images/s vs batch size).
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import torch
from common import RESULTS, RUNS, machine, time_calls, training_record, write_report

from hf_vqgen import VQVAEModel


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after two warm-up calls (the allocator's first steps are slow)."""
    return time_calls(fn, repeats, warmups=2).median


def random_images(model: VQVAEModel, batch_size: int) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] at the tokenizer's resolution and channel count."""
    size = model.config.sample_size
    return torch.rand(batch_size, model.config.in_channels, size, size) * 2 - 1


def tokenization_rows(model: VQVAEModel, batch_sizes: list[int], repeats: int) -> list[dict]:
    model.eval()
    rows = []
    for batch_size in batch_sizes:
        images = random_images(model, batch_size)
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
    images = random_images(model, batch_size)

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, default=RUNS / "recipe", help="A trained tokenizer folder.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument(
        "--train_batch_size", type=int, default=None, help="Default: the batch the tokenizer was trained with."
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.tokenizer / "config.json").is_file():
        parser.error(f"no tokenizer in {args.tokenizer}: run benchmarks/bench_tokenizer_recipe.py or pass --tokenizer")
    if args.train_batch_size is None:
        args.train_batch_size = training_record(args.tokenizer).get("hyperparameters", {}).get("train_batch_size")
        if args.train_batch_size is None:
            parser.error(f"{args.tokenizer} has no model_card.json naming its batch size: pass --train_batch_size")
    return args


def main() -> None:
    args = parse_args()
    model = VQVAEModel.from_pretrained(args.tokenizer)
    height, width = model.latent_shape
    report = {
        "benchmark": "throughput",
        "machine": machine(),
        "scored": args.tokenizer,
        "settings": vars(args),
        "tokenizer": args.tokenizer,
        "image_size": [model.config.in_channels, model.config.sample_size, model.config.sample_size],
        "grid": [height, width],
    }
    with torch.no_grad():
        report["tokenization"] = tokenization_rows(model, args.batch_sizes, args.repeats)
    report["training"] = training_row(model, args.train_batch_size, args.repeats)
    write_report(args.results_dir / "throughput.json", report)
    plot(report["tokenization"], args.results_dir / "throughput.png")


if __name__ == "__main__":
    main()
