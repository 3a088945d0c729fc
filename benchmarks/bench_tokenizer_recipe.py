#!/usr/bin/env python
"""Benchmark: a tokenizer recipe (default: the README's Fashion-MNIST one), and optionally a stock-VQModel baseline
on the same images, trained here by examples/train_vqvae.py and scored on the full evaluation split (PSNR, SSIM,
codebook usage, perplexity). Prints JSON and writes `benchmarks/results/tokenizer_recipe.json`.

    python benchmarks/bench_tokenizer_recipe.py                     # the recipe (~15 minutes on 2 CPU cores)
    python benchmarks/bench_tokenizer_recipe.py --variants recipe stock
    python benchmarks/bench_tokenizer_recipe.py --recipe examples/recipes/vqvae_<dataset>.args --runs_dir DIR \
        --results_file benchmarks/results/<dataset>/tokenizer_recipe.json

The stock baseline is trained on the recipe run's dataset, resolution and channels (read from its saved config and
card), so run the recipe variant first or together with it. Variants run one after the other, never at the same time
(two torch jobs on 2 cores distort each other).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import RECIPES, RESULTS, RUNS, dataset_arguments, machine, read_json, relative, run_script, write_report

from hf_vqgen import VQVAEModel
from hf_vqgen.model_cards import model_facts


# What a user gets from stock diffusers.VQModel defaults plus a typical setup: loss-based codebook with uniform
# init and no restarts, 32-64-64 blocks (a grid of resolution / 4, 256 codes, code dim = latent channels), L1,
# Adam 1e-3, batch 128. The images (dataset, resolution, channels) are the recipe run's.
STOCK = [
    "--block_out_channels", "32", "64", "64", "--latent_channels", "64", "--num_vq_embeddings", "256",
    "--codebook_update", "loss", "--reconstruction_loss", "l1", "--learning_rate", "1e-3",
    "--train_batch_size", "128", "--lr_scheduler", "constant", "--lr_warmup_steps", "0", "--max_train_steps", "100000",
    "--checkpointing_steps", "100000", "--validation_steps", "100000",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["recipe"], choices=("recipe", "stock"))
    parser.add_argument("--recipe", type=Path, default=RECIPES / "vqvae_fashion_mnist.args", help="Tokenizer recipe.")
    parser.add_argument("--stock_minutes", type=float, default=10.0, help="Training budget of the stock baseline.")
    parser.add_argument("--runs_dir", "--output_root", type=Path, default=RUNS, help="Where the runs are saved.")
    parser.add_argument("--results_file", type=Path, default=RESULTS / "tokenizer_recipe.json")
    parser.add_argument(
        "--reuse_runs", nargs="*", default=[], choices=("recipe", "stock"),
        help="Variants whose finished run in --runs_dir is scored as it is instead of trained again.",
    )  # fmt: skip
    return parser.parse_args(argv)


def variant_arguments(name: str, args: argparse.Namespace) -> list[str]:
    """train_vqvae.py's arguments for a variant; the stock one on the recipe run's images."""
    if name == "recipe":
        return [f"@{relative(args.recipe)}"]
    recipe_run = args.runs_dir / "recipe"
    if not (recipe_run / "config.json").is_file():
        raise SystemExit(f"No recipe run in {recipe_run}: run the recipe variant first (--variants recipe stock).")
    config = VQVAEModel.load_config(recipe_run)
    images = ["--resolution", str(config["sample_size"]), "--num_channels", str(config["in_channels"])]
    return dataset_arguments(recipe_run) + images + STOCK + ["--max_train_minutes", str(args.stock_minutes)]


def run_variant(name: str, args: argparse.Namespace) -> dict:
    output_dir = args.runs_dir / name
    argv = variant_arguments(name, args) + ["--output_dir", output_dir, "--report_to", "none"]
    if name in args.reuse_runs:
        wall_minutes = None  # trained earlier by the same arguments; its train_minutes are in its eval_results.json
    else:
        start = time.monotonic()
        run_script("train_vqvae", *argv)
        wall_minutes = (time.monotonic() - start) / 60
    results = read_json(output_dir / "eval_results.json", "examples/train_vqvae.py")
    facts = model_facts(VQVAEModel.from_pretrained(output_dir))
    tokenizer = {key: facts[key] for key in ("resolution", "channels", "grid", "num_codes")}
    return {"scored": output_dir, "argv": argv, "tokenizer": tokenizer, "wall_minutes": wall_minutes, **results}


def main() -> None:
    args = parse_args()
    report = {"benchmark": "tokenizer_recipe", "machine": machine(), "settings": vars(args), "variants": {}}
    for name in args.variants:
        report["variants"][name] = run_variant(name, args)
    report["scored"] = [variant["scored"] for variant in report["variants"].values()]
    write_report(args.results_file, report)


if __name__ == "__main__":
    main()
