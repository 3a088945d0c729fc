#!/usr/bin/env python
"""Copy the benchmark runs of the README's recipes into `pretrained/` as the shipped Fashion-MNIST pipelines:
weights in safetensors, a model card with the recipe's command and hyperparameters and the metrics the benchmarks
measured on these very weights, sample grids, completions, and the reverse-diffusion GIF.

    python benchmarks/ship_pretrained.py   # after bench_ar_recipe.py and bench_diffusion_recipe.py

With `--dtype float16` the weights are stored in half precision (half the size; pipelines still load in float32),
and the benchmark metrics are not copied, since they were measured on the float32 weights: measure the shipped ones
with `examples/evaluate.py --update_card`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import evaluate  # noqa: E402
import sample  # noqa: E402
import train_prior  # noqa: E402
import train_vqvae  # noqa: E402

from hf_vqgen import VQVAEModel, load_pipeline  # noqa: E402
from hf_vqgen.model_cards import model_facts, training_context, write_model_card  # noqa: E402


RUNS = ROOT / "benchmarks" / "results" / "runs"
RECIPES = ROOT / "examples" / "recipes"
DTYPES = {"float16": torch.float16, "float32": torch.float32}
RESULTS = ROOT / "benchmarks" / "results"
EVALUATOR = (
    "examples/evaluate.py ({how}): 10,000 samples (seed 0, classes cycled evenly{settings}) vs the Fashion-MNIST "
    "test split, features of the classifier in benchmarks/assets/fashion_mnist_classifier"
)


def benchmark_metrics() -> dict:
    """{kind: {evaluator: metrics}} from the benchmark results of the shipped runs."""
    ar = json.loads((RESULTS / "prior_recipe.json").read_text())
    tokenizer = json.loads((RUNS / "recipe" / "eval_results.json").read_text())
    diffusion = json.loads((RESULTS / "diffusion_recipe.json").read_text())
    shipped = next(row for row in diffusion["rows"] if row["prior"].startswith("absorbing") and row["steps"] == 16)
    settings = ar["sampling"]["settings"]
    return {
        "tokenizer": {
            "examples/train_vqvae.py on the 10,000 test images": {
                key: tokenizer[key] for key in train_vqvae.CARD_METRICS
            },
            EVALUATOR.format(how="--tokenizer, reconstructions", settings=""): {"rfid": ar["tokenizer_rfid"]},
        },
        "ar": {
            EVALUATOR.format(
                how="benchmarks/bench_ar_recipe.py",
                settings=f", guidance {settings['guidance_scale']}, temperature {settings['temperature']}",
            ): {key: ar["samples"][key] for key in evaluate.CARD_METRICS if key in ar["samples"]},
            EVALUATOR.format(
                how="benchmarks/bench_ar_recipe.py", settings=f", guidance {ar['guided']['guidance_scale']}"
            ): {key: ar["guided"]["samples"][key] for key in evaluate.CARD_METRICS if key in ar["guided"]["samples"]},
        },
        "diffusion": {
            EVALUATOR.format(how="benchmarks/bench_diffusion_recipe.py", settings=", 16 steps, guidance 1"): {
                key: shipped[key] for key in ("fid", "kid", "precision", "recall")
            }
        },
    }


def ship_tokenizer(source: Path, target: Path, dtype: torch.dtype, metrics: dict) -> None:
    tokenizer = VQVAEModel.from_pretrained(source).to(dtype)
    tokenizer.save_pretrained(target)
    args = train_vqvae.parse_args([f"@{RECIPES / 'vqvae_fashion_mnist.args'}", "--output_dir", str(target)])
    shutil.copy2(source / "reconstructions.png", target / "reconstructions.png")
    context = training_context("tokenizer", "train_vqvae.py", args, model_facts(tokenizer), {}, "none")
    context["metrics"] = metrics
    write_model_card(target, context)


def ship_pipeline(source: Path, target: Path, dtype: torch.dtype, recipe: str, metrics: dict) -> None:
    pipeline = load_pipeline(source)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.to(dtype)
    pipeline.save_pretrained(target)
    args = train_prior.parse_args([f"@{RECIPES / recipe}", "--vqvae_name_or_path", "fashion-mnist-tokenizer",
                                   "--output_dir", str(target)])  # fmt: skip
    shipped = load_pipeline(target)  # float32 again, as users get it
    scheduler = getattr(shipped, "scheduler", None)
    # the recipes' sampling settings: 16 steps for the diffusion prior, guidance 1.5 for the AR prior
    gif = ["--num_inference_steps", "16", "--gif"] if scheduler is not None else ["--guidance_scale", "1.5"]
    sample.main(sample.parse_args(["--pipeline", str(target), "--output_dir", str(target), "--samples_per_class",
                                   "8", "--num_completions", "8", *gif]))  # fmt: skip
    context = training_context(
        args.prior_type, "train_prior.py", args, model_facts(shipped.vqvae, shipped.layout, scheduler), {}, "none"
    )
    context["metrics"] = metrics
    write_model_card(target, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "pretrained")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--diffusion_run", default="diffusion-1", help="Folder in runs/ of the shipped denoiser.")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    metrics = benchmark_metrics() if dtype == torch.float32 else {"tokenizer": {}, "ar": {}, "diffusion": {}}
    ship_tokenizer(RUNS / "recipe", args.output_dir / "fashion-mnist-tokenizer", dtype, metrics["tokenizer"])
    ship_pipeline(RUNS / "ar", args.output_dir / "fashion-mnist-ar", dtype, "ar_fashion_mnist.args", metrics["ar"])
    diffusion_target = args.output_dir / "fashion-mnist-diffusion"
    ship_pipeline(
        RUNS / args.diffusion_run, diffusion_target, dtype, "diffusion_fashion_mnist.args", metrics["diffusion"]
    )
    print(f"Shipped to {args.output_dir}")


if __name__ == "__main__":
    main()
