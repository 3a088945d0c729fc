#!/usr/bin/env python
"""Benchmark: the README's autoregressive recipe on top of the tokenizer recipe's model — encode Fashion-MNIST,
train the prior, then score the tokenizer (rFID) and 10,000 pipeline samples (FID) with examples/evaluate.py.

    python benchmarks/bench_ar_recipe.py   # after bench_tokenizer_recipe.py (uses its runs/recipe tokenizer)

Samples are scored twice: plain (guidance 1, temperature 1) and with the recipe's classifier-free guidance 1.5.
Writes benchmarks/results/prior_recipe.json (train minutes, held-out bits, FID vs rFID) and prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import encode_dataset  # noqa: E402
import evaluate  # noqa: E402
import train_prior  # noqa: E402
from bench_tokenizer_recipe import machine  # noqa: E402


RUNS = ROOT / "benchmarks" / "results" / "runs"
RECIPE = ROOT / "examples" / "recipes" / "ar_fashion_mnist.args"
GUIDANCE = 1.5  # the recipe's sampling setting (a sweep of 1, 1.5, 2 on 10,000 samples picked it)


def main() -> None:
    tokenizer, tokens, pipeline = RUNS / "recipe", RUNS / "tokens", RUNS / "ar"
    if not (tokenizer / "config.json").is_file():
        raise SystemExit(f"No tokenizer at {tokenizer}: run benchmarks/bench_tokenizer_recipe.py first.")
    encode_dataset.main(
        encode_dataset.parse_args(["--vqvae_name_or_path", str(tokenizer), "--output_dir", str(tokens)])
    )
    trained = train_prior.main(
        train_prior.parse_args(
            [
                f"@{RECIPE}",
                "--vqvae_name_or_path",
                str(tokenizer),
                "--tokens_dir",
                str(tokens),
                "--output_dir",
                str(pipeline),
                "--report_to",
                "none",
            ]
        )  # fmt: skip
    )
    reconstruction = evaluate.main(
        evaluate.parse_args(["--tokenizer", str(tokenizer), "--output_dir", str(RUNS / "eval-tokenizer")])
    )
    samples = evaluate.main(
        evaluate.parse_args(
            ["--pipeline", str(pipeline), "--num_samples", "10000", "--output_dir", str(RUNS / "eval-ar")]
        )
    )
    guided = evaluate.main(
        evaluate.parse_args(
            [
                "--pipeline",
                str(pipeline),
                "--num_samples",
                "10000",
                "--guidance_scale",
                str(GUIDANCE),
                "--output_dir",
                str(RUNS / f"eval-ar-g{GUIDANCE}-t1.0"),
            ]
        )  # fmt: skip
    )
    report = {
        "benchmark": "prior_recipe",
        "machine": machine(),
        "train_minutes": trained["train_minutes"],
        "prior": trained,
        "tokenizer_rfid": reconstruction["metrics"]["fid"],
        "samples": samples["metrics"],
        "sampling": samples["timings"] | {"settings": samples["settings"]},
        "fid_over_rfid": samples["metrics"]["fid"] / reconstruction["metrics"]["fid"],
        "guided": {
            "guidance_scale": GUIDANCE,
            "samples": guided["metrics"],
            "fid_over_rfid": guided["metrics"]["fid"] / reconstruction["metrics"]["fid"],
        },
    }
    results = ROOT / "benchmarks" / "results" / "prior_recipe.json"
    results.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
