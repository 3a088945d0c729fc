#!/usr/bin/env python
"""Benchmark: which tokenizer makes the prior's job easier. Each tokenizer (a saved `VQVAEModel` folder: a learned
codebook, FSQ, another codebook size...) is scored on its reconstructions — PSNR, SSIM, codes used, rFID in each
feature space given, mean colour error — and then by the same short autoregressive prior trained on its codes: the
prior's held-out bits/token and the FID of its samples. Every step runs as its example script (encode_dataset.py,
train_prior.py, evaluate.py); finished steps are reused (`--reuse`). `benchmarks/report.py` renders the table.

    python benchmarks/compare_tokenizers.py \
        --tokenizers vq=pretrained/emoji-tokenizer fsq=benchmarks/results/runs/emoji/vqvae-fsq \
        --prior_recipe examples/recipes/ar_emoji.args --prior_steps 450 \
        --runs_dir benchmarks/results/runs/emoji/tokenizer-comparison \
        --results_file benchmarks/results/emoji/tokenizer_comparison.json

Equal prior compute: every prior runs the recipe with `--max_train_steps --prior_steps` (the cosine schedule ends
there), the same batch, seed and data order. The dataset is the one each tokenizer recorded. Writes the JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import (
    RECIPES,
    RESULTS,
    RUNS,
    dataset_arguments,
    local,
    machine,
    read_json,
    recipe_values,
    relative,
    run_script,
    training_record,
    write_report,
)

from hf_vqgen import VQVAEModel
from hf_vqgen.evaluation import evaluate_tokenizer
from hf_vqgen.evaluation.features import load_split_images
from hf_vqgen.model_cards import recorded_data_source


FEATURE_EXTRACTORS = {
    "shape": "benchmarks/assets/emoji_shape_classifier",
    "global": "benchmarks/assets/emoji_classifier",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", nargs="+", required=True, help="name=folder pairs, compared in this order.")
    parser.add_argument("--prior_recipe", type=Path, default=RECIPES / "ar_emoji.args")
    parser.add_argument("--prior_steps", type=int, default=450, help="Steps of every prior (equal compute).")
    parser.add_argument(
        "--feature_extractors", nargs="+", default=[f"{k}={v}" for k, v in FEATURE_EXTRACTORS.items()],
        help="name=folder pairs of the feature spaces rFID and FID are computed in; the first is the headline.",
    )  # fmt: skip
    parser.add_argument(
        "--train_minutes", nargs="*", default=[],
        help="name=minutes for a tokenizer folder without eval_results.json (a shipped one), as its benchmark recorded.",
    )  # fmt: skip
    parser.add_argument("--num_samples", type=int, default=2000, help="Prior samples scored (classes cycled).")
    parser.add_argument("--runs_dir", type=Path, default=RUNS / "tokenizer-comparison")
    parser.add_argument("--reuse", action="store_true", help="Reuse finished tokens, priors and evaluations.")
    parser.add_argument("--results_file", type=Path, default=RESULTS / "tokenizer_comparison.json")
    args = parser.parse_args(argv)
    for flag in ("tokenizers", "feature_extractors"):
        pairs = [value.split("=", 1) for value in getattr(args, flag)]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            parser.error(f"--{flag} takes name=folder pairs, got {getattr(args, flag)}.")
        setattr(args, flag, dict(pairs))
    try:
        args.train_minutes = {k: float(v) for k, v in (value.split("=", 1) for value in args.train_minutes)}
    except ValueError:
        parser.error(f"--train_minutes takes name=minutes pairs, got {args.train_minutes}.")
    if args.prior_steps < 1:
        parser.error(f"--prior_steps must be >= 1, got {args.prior_steps}.")
    return args


def evaluate(output_dir: Path, reuse: bool, *argv) -> dict:
    """examples/evaluate.py's results for `argv`, run into `output_dir` (or read from there with `reuse`)."""
    if not (reuse and (output_dir / "results.json").is_file()):
        run_script("evaluate", *argv, "--output_dir", output_dir)
    return read_json(output_dir / "results.json", "examples/evaluate.py")


@torch.no_grad()
def mean_colour_error(tokenizer_dir: str | Path) -> dict:
    """Reconstruction figures of the test split in-process, plus how far the mean colour of each reconstruction is
    from its original's (mean over images of the per-channel absolute difference, in 0-255 levels): a colour shift
    that PSNR averages away (the cactus that comes back olive)."""
    tokenizer = VQVAEModel.from_pretrained(tokenizer_dir).eval()
    dataset = recorded_data_source(tokenizer_dir)
    images = load_split_images(dataset, "test", tokenizer.config.sample_size, tokenizer.config.in_channels)
    reconstructions, figures = evaluate_tokenizer(tokenizer, images.split(128), keep_reconstructions=True)
    shift = (reconstructions.mean(dim=(2, 3)) - images.mean(dim=(2, 3))).abs() * 127.5
    return figures | {"mean_colour_error": float(shift.mean()), "max_colour_error": float(shift.max())}


def compare(name: str, tokenizer: Path, args: argparse.Namespace, spaces: dict[str, str]) -> dict:
    runs = args.runs_dir / name
    scoring = dataset_arguments(tokenizer, scoring=True)
    recorded = read_json(tokenizer / "eval_results.json") if (tokenizer / "eval_results.json").is_file() else {}
    minutes = recorded.get("train_minutes", args.train_minutes.get(name))
    row = {"tokenizer": relative(tokenizer), "command": training_record(tokenizer).get("command"),
           "train_minutes": minutes, "train_steps": recorded.get("train_steps")}  # fmt: skip
    row["reconstruction"] = mean_colour_error(tokenizer)
    for space, extractor in spaces.items():
        result = evaluate(runs / f"eval-tokenizer-{space}", args.reuse, "--tokenizer", tokenizer, *scoring,
                          "--feature_extractor", extractor)  # fmt: skip
        row["reconstruction"][f"rfid_{space}"] = result["metrics"]["fid"]
        row["reconstruction"][f"recognisability_{space}"] = result["metrics"].get("recognisability")
    tokens, prior = runs / "tokens", runs / "ar"
    labels = recipe_values(args.prior_recipe, "--label_columns")
    if not (args.reuse and (tokens / "dataset_dict.json").is_file()):
        data = dataset_arguments(tokenizer)
        run_script("encode_dataset", "--vqvae_name_or_path", tokenizer, "--output_dir", tokens, *data,
                   *(["--label_columns", *labels] if labels else []))  # fmt: skip
    if not (args.reuse and (prior / "eval_results.json").is_file()):
        run_script("train_prior", f"@{relative(args.prior_recipe)}", "--vqvae_name_or_path", tokenizer,
                   "--tokens_dir", tokens, "--max_train_steps", args.prior_steps, "--max_train_minutes", 600,
                   "--output_dir", prior, "--report_to", "none")  # fmt: skip
    trained = read_json(prior / "eval_results.json", "examples/train_prior.py")
    row["prior"] = {"pipeline": relative(prior), **trained}
    for space, extractor in spaces.items():
        result = evaluate(runs / f"eval-ar-{space}", args.reuse, "--pipeline", prior, "--num_samples",
                          args.num_samples, *scoring, "--feature_extractor", extractor)  # fmt: skip
        row["prior"][f"fid_{space}"] = result["metrics"]["fid"]
        row["prior"][f"recognisability_{space}"] = result["metrics"].get("recognisability")
        row["prior"][f"sampling_command_{space}"] = result["command"]
    return row


def main() -> None:
    args = parse_args()
    spaces = args.feature_extractors
    rows = {name: compare(name, Path(local(folder)), args, spaces) for name, folder in args.tokenizers.items()}
    report = {
        "benchmark": "tokenizer_comparison",
        "machine": machine(),
        "scored": [row["tokenizer"] for row in rows.values()] + [row["prior"]["pipeline"] for row in rows.values()],
        "settings": vars(args) | {"prior_recipe": relative(args.prior_recipe)},
        "feature_spaces": spaces,
        "tokenizers": rows,
    }
    write_report(args.results_file, report)


if __name__ == "__main__":
    main()
