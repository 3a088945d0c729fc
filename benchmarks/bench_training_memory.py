#!/usr/bin/env python
"""Peak memory of training each recipe: every recipe given runs for `--steps` steps as its example script
(examples/train_vqvae.py or train_prior.py, the recipe's batch size and model, one process), then evaluates and
saves as it always does; the script records its RSS high-water mark (`peak_rss_mib` in its eval_results.json), which
this benchmark collects. The mark is reached in the first steps (weights, optimiser state, activations of one batch,
the dataset's rows); a full-length run of the same recipe records the same field.

    python benchmarks/bench_training_memory.py --tokenizer benchmarks/results/runs/emoji/recipe \\
        --recipes examples/recipes/vqvae_emoji.args examples/recipes/ar_emoji.args \\
        examples/recipes/diffusion_emoji.args --results_file benchmarks/results/emoji/training_memory.json

The priors train on the tokens in `<tokenizer>/../tokens` (examples/encode_dataset.py's output beside the tokenizer
run), so no encoding is timed or counted.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import machine, read_json, relative, run_script, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", type=Path, nargs="+", required=True, help="examples/recipes/*.args files.")
    parser.add_argument("--tokenizer", type=Path, required=True, help="The tokenizer run the priors train on.")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--results_file", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def measure(recipe: Path, args: argparse.Namespace, output_dir: Path) -> dict:
    argv = [f"@{relative(recipe)}", "--max_train_steps", args.steps, "--output_dir", output_dir, "--report_to", "none"]
    if recipe.name.startswith("vqvae"):
        run_script("train_vqvae", *argv, "--checkpointing_steps", 10**6, "--validation_steps", 10**6)
    else:
        tokens = args.tokenizer.parent / "tokens"
        run_script("train_prior", *argv, "--vqvae_name_or_path", args.tokenizer, "--tokens_dir", tokens,
                   "--checkpointing_steps", 10**6)  # fmt: skip
    results = read_json(output_dir / "eval_results.json")
    return {"peak_rss_mib": results["peak_rss_mib"], "train_steps": results["train_steps"]}


def main() -> None:
    args = parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for recipe in args.recipes:
            rows[relative(recipe)] = measure(recipe, args, Path(scratch) / recipe.stem)
    report = {"benchmark": "training_memory", "machine": machine(), "scored": [relative(r) for r in args.recipes]}
    report |= {"settings": vars(args), "recipes": rows}
    write_report(args.results_file, report)


if __name__ == "__main__":
    main()
