#!/usr/bin/env python
"""Copy the benchmark runs of the README's recipes into `pretrained/` as the shipped Fashion-MNIST pipelines:
weights in safetensors (half precision by default, to keep the repository small; pipelines load in float32), a
model card with the recipe's command and hyperparameters, sample grids, and the reverse-diffusion GIF.

    python benchmarks/ship_pretrained.py          # after bench_ar_recipe.py and bench_diffusion_recipe.py
    python examples/evaluate.py --pipeline pretrained/fashion-mnist-ar --update_card ...   # then measure them

The cards carry no metric until `examples/evaluate.py --update_card` has measured the shipped weights themselves.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import sample  # noqa: E402
import train_prior  # noqa: E402
import train_vqvae  # noqa: E402

from hf_vqgen import VQVAEModel, load_pipeline  # noqa: E402
from hf_vqgen.model_cards import model_facts, training_context, write_model_card  # noqa: E402


RUNS = ROOT / "benchmarks" / "results" / "runs"
RECIPES = ROOT / "examples" / "recipes"
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def ship_tokenizer(source: Path, target: Path, dtype: torch.dtype) -> None:
    tokenizer = VQVAEModel.from_pretrained(source).to(dtype)
    tokenizer.save_pretrained(target)
    args = train_vqvae.parse_args([f"@{RECIPES / 'vqvae_fashion_mnist.args'}", "--output_dir", str(target)])
    shutil.copy2(source / "reconstructions.png", target / "reconstructions.png")
    context = training_context("tokenizer", "train_vqvae.py", args, model_facts(tokenizer), {}, "none")
    context["metrics"] = {}
    write_model_card(target, context)


def ship_pipeline(source: Path, target: Path, dtype: torch.dtype, recipe: str, overrides: list[str]) -> None:
    pipeline = load_pipeline(source)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.to(dtype)
    pipeline.save_pretrained(target)
    args = train_prior.parse_args([f"@{RECIPES / recipe}", *overrides, "--vqvae_name_or_path", "fashion-mnist-tokenizer",
                                   "--output_dir", str(target)])  # fmt: skip
    shipped = load_pipeline(target)  # float32 again, as users get it
    scheduler = getattr(shipped, "scheduler", None)
    gif = ["--num_inference_steps", "16", "--gif"] if scheduler is not None else []
    sample.main(sample.parse_args(["--pipeline", str(target), "--output_dir", str(target), "--samples_per_class",
                                   "8", "--num_completions", "8", *gif]))  # fmt: skip
    context = training_context(
        args.prior_type, "train_prior.py", args, model_facts(shipped.vqvae, shipped.layout, scheduler), {}, "none"
    )
    context["metrics"] = {}
    write_model_card(target, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "pretrained")
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    parser.add_argument("--diffusion_run", default="diffusion-1", help="Folder in runs/ of the shipped denoiser.")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    ship_tokenizer(RUNS / "recipe", args.output_dir / "fashion-mnist-tokenizer", dtype)
    ship_pipeline(RUNS / "ar", args.output_dir / "fashion-mnist-ar", dtype, "ar_fashion_mnist.args", [])
    ship_pipeline(
        RUNS / args.diffusion_run,
        args.output_dir / "fashion-mnist-diffusion",
        dtype,
        "diffusion_fashion_mnist.args",
        [],
    )
    print(f"Shipped to {args.output_dir}")


if __name__ == "__main__":
    main()
