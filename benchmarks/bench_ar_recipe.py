#!/usr/bin/env python
"""Benchmark: an autoregressive recipe (default: the README's Fashion-MNIST one) on top of the tokenizer recipe's
model — encode its dataset, train the prior, then score the tokenizer (rFID) and samples of the pipeline (FID), each
step run as its example script (examples/encode_dataset.py, train_prior.py, evaluate.py).

    python benchmarks/bench_ar_recipe.py   # after bench_tokenizer_recipe.py (uses its runs/recipe tokenizer)

The dataset is the one the tokenizer was trained on (its model card). Samples are scored twice: plain (guidance 1,
temperature 1) and with classifier-free guidance `--guidance_scale` (1.5: a sweep of 1, 1.5, 2 on 10,000 samples
picked it for the Fashion-MNIST recipe). Writes benchmarks/results/prior_recipe.json (train minutes, held-out bits,
FID vs rFID) and prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import (
    RECIPES,
    RESULTS,
    RUNS,
    dataset_arguments,
    machine,
    read_json,
    recipe_values,
    relative,
    run_script,
    write_report,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPES / "ar_fashion_mnist.args", help="Prior recipe.")
    parser.add_argument("--runs_dir", type=Path, default=RUNS, help="Holds the tokenizer run `recipe`; runs go here.")
    parser.add_argument("--num_samples", type=int, default=10000, help="Samples scored per setting.")
    parser.add_argument("--guidance_scale", type=float, default=1.5, help="The guided setting scored.")
    parser.add_argument("--results_file", type=Path, default=RESULTS / "prior_recipe.json")
    return parser.parse_args(argv)


def evaluate(output_dir: Path, *argv) -> dict:
    """examples/evaluate.py's results for `argv`, run into `output_dir`."""
    run_script("evaluate", *argv, "--output_dir", output_dir)
    return read_json(output_dir / "results.json", "examples/evaluate.py")


def main() -> None:
    args = parse_args()
    runs = args.runs_dir
    tokenizer, tokens, pipeline = runs / "recipe", runs / "tokens", runs / "ar"
    if not (tokenizer / "config.json").is_file():
        raise SystemExit(f"No tokenizer at {relative(tokenizer)}: run benchmarks/bench_tokenizer_recipe.py first.")
    data = dataset_arguments(tokenizer)
    labels = recipe_values(args.recipe, "--label_columns")  # the classes the prior is conditioned on
    labels = ["--label_columns", *labels] if labels else []
    run_script("encode_dataset", "--vqvae_name_or_path", tokenizer, "--output_dir", tokens, *data, *labels)
    run_script("train_prior", f"@{relative(args.recipe)}", "--vqvae_name_or_path", tokenizer, "--tokens_dir", tokens,
               "--output_dir", pipeline, "--report_to", "none")  # fmt: skip
    trained = read_json(pipeline / "eval_results.json", "examples/train_prior.py")
    scoring = dataset_arguments(tokenizer, scoring=True)  # scored at the tokenizer's resolution and channels
    reconstruction = evaluate(runs / "eval-tokenizer", "--tokenizer", tokenizer, *scoring)
    sampled = ["--pipeline", pipeline, "--num_samples", args.num_samples, *scoring]
    samples = evaluate(runs / "eval-ar", *sampled)
    guided = evaluate(runs / f"eval-ar-g{args.guidance_scale:g}", *sampled, "--guidance_scale", args.guidance_scale)
    rfid = reconstruction["metrics"]["fid"]
    report = {
        "benchmark": "prior_recipe",
        "machine": machine(),
        "scored": {"pipeline": pipeline, "tokenizer": tokenizer},
        "settings": vars(args),
        "train_minutes": trained["train_minutes"],
        "prior": trained,
        "tokenizer_rfid": rfid,
        "tokenizer_evaluation": {
            "num_images": reconstruction["metrics"]["num_samples"],
            "settings": reconstruction["settings"],
            "command": reconstruction["command"],
        },
        "samples": samples["metrics"],
        "sampling": samples["timings"] | {"settings": samples["settings"], "command": samples["command"]},
        "fid_over_rfid": samples["metrics"]["fid"] / rfid,
        "guided": {
            "guidance_scale": args.guidance_scale,
            "samples": guided["metrics"],
            "sampling": guided["timings"] | {"settings": guided["settings"], "command": guided["command"]},
            "fid_over_rfid": guided["metrics"]["fid"] / rfid,
        },
    }
    write_report(args.results_file, report)


if __name__ == "__main__":
    main()
