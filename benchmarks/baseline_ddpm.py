#!/usr/bin/env python
"""The baseline a user would pick instead of this project: diffusers' pixel-space `UNet2DModel` + `DDPMScheduler`
trained on the same images as the tokenizer recipe for a fixed number of CPU minutes, sampled with `DDIMPipeline`
(50 steps), and scored by the same evaluator at the same sample count.

    python benchmarks/baseline_ddpm.py --train_minutes 14.4 --num_samples 1000

The dataset, resolution and channels are the tokenizer run's (`--tokenizer`: its config and model card). Default
minutes: the project's recipe time (read from benchmarks/results/tokenizer_recipe.json, plus the prior's once its
benchmark exists). Saves the trained pipeline in benchmarks/results/runs/baseline-ddpm, writes
benchmarks/results/baseline_ddpm.json and a sample grid; prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import RESULTS, RUNS, dataset_arguments, machine, write_report
from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from hf_vqgen import VQVAEModel
from hf_vqgen.evaluation import score_images
from hf_vqgen.evaluation.features import load_feature_extractor, load_split_images
from hf_vqgen.image_utils import image_grid


ASSETS = Path(__file__).resolve().parent / "assets"
MULTIPLE = 8  # the UNet's input side: the images padded up to a multiple of this (28 -> 32)


def project_recipe_minutes(results: Path) -> float:
    """Training minutes of the project's chain, as measured by its benchmarks."""
    report = json.loads((results / "tokenizer_recipe.json").read_text())
    minutes = report["variants"]["recipe"]["train_minutes"]
    prior = results / "prior_recipe.json"  # written by the prior benchmarks once they exist
    if prior.is_file():
        minutes += json.loads(prior.read_text())["train_minutes"]
    return minutes


def padding(resolution: int) -> tuple[int, int]:
    """Pixels added before and after each side to reach a multiple of `MULTIPLE`."""
    total = -resolution % MULTIPLE
    return total // 2, total - total // 2


def build_unet(resolution: int, channels: int) -> UNet2DModel:
    # a small CPU-sized version of the diffusers unconditional-training example's UNet, on the padded images
    return UNet2DModel(
        sample_size=resolution + sum(padding(resolution)), in_channels=channels, out_channels=channels,
        layers_per_block=1, block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=16,
    )  # fmt: skip


def train(unet: UNet2DModel, images: torch.Tensor, minutes: float, batch_size: int, seed: int) -> dict:
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=0.0)
    lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=100)
    generator = torch.Generator().manual_seed(seed)
    padded = F.pad(images, padding(images.shape[-1]) * 2, value=-1.0)
    unet.train()
    steps, start = 0, time.monotonic()
    progress = tqdm(desc="DDPM steps")
    while time.monotonic() - start < 60 * minutes:
        batch = padded[torch.randint(0, len(padded), (batch_size,), generator=generator)]
        noise = torch.randn(batch.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
        loss = F.mse_loss(unet(scheduler.add_noise(batch, noise, timesteps), timesteps).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
    progress.close()
    return {"train_steps": steps, "train_minutes": (time.monotonic() - start) / 60, "train_batch_size": batch_size}


@torch.no_grad()
def sample(
    pipeline: DDIMPipeline, num_samples: int, batch_size: int, seed: int, resolution: int
) -> tuple[torch.Tensor, float]:
    """`num_samples` images (N, C, resolution, resolution) in [-1, 1], the padding cropped off, and the seconds."""
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    start, chunks = time.monotonic(), []
    for first in tqdm(range(0, num_samples, batch_size), desc="DDIM sampling"):
        count = min(batch_size, num_samples - first)
        out = pipeline(batch_size=count, generator=generator, num_inference_steps=50, output_type="np").images
        chunks.append(torch.from_numpy(out).permute(0, 3, 1, 2) * 2 - 1)  # [0, 1] HWC -> [-1, 1] CHW
    before = padding(resolution)[0]
    crop = slice(before, before + resolution)
    return torch.cat(chunks)[..., crop, crop], time.monotonic() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, default=RUNS / "recipe", help="Its images are the baseline's.")
    parser.add_argument("--dataset_name", default=None, help="Default: the one the tokenizer was trained on.")
    parser.add_argument("--train_minutes", type=float, default=None, help="Default: the project's recipe minutes.")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--train_batch_size", type=int, default=64)
    parser.add_argument("--sample_batch_size", type=int, default=100)
    parser.add_argument(
        "--feature_extractor", default=None, help="Default: benchmarks/assets/<dataset_name>_classifier."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=Path, default=RUNS / "baseline-ddpm", help="The trained pipeline.")
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.tokenizer / "config.json").is_file():
        parser.error(f"no tokenizer in {args.tokenizer}: run benchmarks/bench_tokenizer_recipe.py first")
    config = VQVAEModel.load_config(args.tokenizer)
    args.resolution, args.num_channels = config["sample_size"], config["in_channels"]
    if args.dataset_name is None:
        dataset = dataset_arguments(args.tokenizer, scoring=True)
        if not dataset:
            parser.error(f"{args.tokenizer} has no model_card.json naming its dataset: pass --dataset_name")
        args.dataset_name = dataset[1]
    args.feature_extractor = args.feature_extractor or str(ASSETS / f"{args.dataset_name}_classifier")
    if args.train_minutes is None:
        args.train_minutes = project_recipe_minutes(args.results_dir)
    return args


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    unet = build_unet(args.resolution, args.num_channels)
    report = {"benchmark": "baseline_ddpm", "machine": machine(), "scored": args.output_dir, "settings": vars(args)}
    images = load_split_images(args.dataset_name, "train", args.resolution, args.num_channels)
    report["training"] = train(unet, images, args.train_minutes, args.train_batch_size, args.seed)
    pipeline = DDIMPipeline(unet=unet.eval(), scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.save_pretrained(args.output_dir)
    samples, seconds = sample(pipeline, args.num_samples, args.sample_batch_size, args.seed, args.resolution)
    report["sampling"] = {"seconds": seconds, "images_per_second": args.num_samples / seconds, "scheduler": "DDIM-50"}
    extractor = load_feature_extractor(args.feature_extractor)
    report["metrics"] = score_images(samples, extractor, args.dataset_name, "test")
    write_report(args.results_dir / "baseline_ddpm.json", report)
    image_grid(samples[:64]).save(args.results_dir / "baseline_ddpm_samples.png")


if __name__ == "__main__":
    main()
