#!/usr/bin/env python
"""Benchmark: the README's Fashion-MNIST tokenizer recipe, and optionally the stock-VQModel baseline, trained here
and scored on the full test split (PSNR, codebook usage, perplexity). Prints JSON and writes
`benchmarks/results/tokenizer_recipe.json`.

    python benchmarks/bench_tokenizer_recipe.py                     # the recipe (~15 minutes on 2 CPU cores)
    python benchmarks/bench_tokenizer_recipe.py --variants recipe stock

Variants run one after the other, never at the same time (two torch jobs on 2 cores distort each other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import train_vqvae  # noqa: E402


RECIPE = ROOT / "examples" / "recipes" / "vqvae_fashion_mnist.args"
# What a user gets from stock diffusers.VQModel defaults plus a typical setup: loss-based codebook with uniform
# init and no restarts, 32-64-64 blocks (7x7 grid, 256 codes, code dim = latent channels), L1, Adam 1e-3, batch 128.
STOCK = [
    "--dataset_name", "fashion_mnist", "--resolution", "28", "--num_channels", "1",
    "--block_out_channels", "32", "64", "64", "--latent_channels", "64", "--num_vq_embeddings", "256",
    "--codebook_update", "loss", "--reconstruction_loss", "l1", "--learning_rate", "1e-3",
    "--train_batch_size", "128", "--lr_scheduler", "constant", "--lr_warmup_steps", "0", "--max_train_steps", "100000",
    "--checkpointing_steps", "100000", "--validation_steps", "100000",
]  # fmt: skip


def machine() -> dict:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        # PASSIVE (set for multi-process runs) slows small-op loops such as KV-cached sampling; recorded so figures
        # taken under different policies are not compared blindly.
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "torch": torch.__version__,
        "python": sys.version,
    }


def run_variant(name: str, output_root: Path, minutes: float) -> dict:
    argv = [f"@{RECIPE}"] if name == "recipe" else STOCK + ["--max_train_minutes", str(minutes)]
    argv += ["--output_dir", str(output_root / name), "--report_to", "none"]
    start = time.monotonic()
    results = train_vqvae.main(train_vqvae.parse_args(argv))
    return {"argv": argv, "wall_minutes": (time.monotonic() - start) / 60, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["recipe"], choices=("recipe", "stock"))
    parser.add_argument("--stock_minutes", type=float, default=10.0, help="Training budget of the stock baseline.")
    parser.add_argument("--output_root", default=str(ROOT / "benchmarks" / "results" / "runs"))
    parser.add_argument("--results_file", default=str(ROOT / "benchmarks" / "results" / "tokenizer_recipe.json"))
    args = parser.parse_args()

    report = {"benchmark": "tokenizer_recipe", "machine": machine(), "variants": {}}
    for name in args.variants:
        report["variants"][name] = run_variant(name, Path(args.output_root), args.stock_minutes)
    Path(args.results_file).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results_file).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
