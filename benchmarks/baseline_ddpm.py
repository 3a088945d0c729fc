#!/usr/bin/env python
"""The baseline a user would pick instead of this project: diffusers' pixel-space `UNet2DModel` + `DDPMScheduler`
trained on the same Fashion-MNIST images for a fixed number of CPU minutes, sampled with `DDIMPipeline`
(50 steps), and scored by the same evaluator at the same sample count.

    python benchmarks/baseline_ddpm.py --train_minutes 14.4 --num_samples 1000

Default minutes: the project's recipe time (read from benchmarks/results/tokenizer_recipe.json, plus the prior's
once its benchmark exists). Writes benchmarks/results/baseline_ddpm.json and a sample grid; prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_tokenizer_recipe import machine  # noqa: E402

from hf_vqgen.evaluation import score_images  # noqa: E402
from hf_vqgen.feature_extractors import load_feature_extractor, load_split_images  # noqa: E402
from hf_vqgen.image_utils import image_grid  # noqa: E402


RESULTS = ROOT / "benchmarks" / "results"


def project_recipe_minutes() -> float:
    """Training minutes of the project's chain, as measured by its benchmarks."""
    report = json.loads((RESULTS / "tokenizer_recipe.json").read_text())
    minutes = report["variants"]["recipe"]["train_minutes"]
    prior = RESULTS / "prior_recipe.json"  # written by the prior benchmarks once they exist
    if prior.is_file():
        minutes += json.loads(prior.read_text())["train_minutes"]
    return minutes


def build_unet() -> UNet2DModel:
    # a small CPU-sized version of the diffusers unconditional-training example's UNet, at 32x32 (28 padded)
    return UNet2DModel(
        sample_size=32, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=16,
    )  # fmt: skip


def train(unet: UNet2DModel, images: torch.Tensor, minutes: float, batch_size: int, seed: int) -> dict:
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=0.0)
    lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=100)
    generator = torch.Generator().manual_seed(seed)
    padded = F.pad(images, (2, 2, 2, 2), value=-1.0)
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
def sample(unet: UNet2DModel, num_samples: int, batch_size: int, seed: int) -> tuple[torch.Tensor, float]:
    pipeline = DDIMPipeline(unet=unet.eval(), scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    start, chunks = time.monotonic(), []
    for first in tqdm(range(0, num_samples, batch_size), desc="DDIM sampling"):
        count = min(batch_size, num_samples - first)
        out = pipeline(batch_size=count, generator=generator, num_inference_steps=50, output_type="np").images
        chunks.append(torch.from_numpy(out).permute(0, 3, 1, 2) * 2 - 1)  # [0, 1] HWC -> [-1, 1] CHW
    return torch.cat(chunks)[..., 2:30, 2:30], time.monotonic() - start  # crop the padding back off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_minutes", type=float, default=None, help="Default: the project's recipe minutes.")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--train_batch_size", type=int, default=64)
    parser.add_argument("--sample_batch_size", type=int, default=100)
    parser.add_argument(
        "--feature_extractor", default=str(ROOT / "benchmarks" / "assets" / "fashion_mnist_classifier")
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    minutes = args.train_minutes if args.train_minutes is not None else project_recipe_minutes()

    torch.manual_seed(args.seed)
    unet = build_unet()
    report = {"benchmark": "baseline_ddpm", "machine": machine(), "settings": vars(args) | {"train_minutes": minutes}}
    report["training"] = train(unet, load_split_images("fashion_mnist", "train", 28, 1), minutes,
                               args.train_batch_size, args.seed)  # fmt: skip
    samples, seconds = sample(unet, args.num_samples, args.sample_batch_size, args.seed)
    report["sampling"] = {"seconds": seconds, "images_per_second": args.num_samples / seconds, "scheduler": "DDIM-50"}
    extractor = load_feature_extractor(args.feature_extractor)
    report["metrics"] = score_images(samples, extractor, "fashion_mnist", "test")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "baseline_ddpm.json").write_text(json.dumps(report, indent=2))
    image_grid(samples[:64]).save(RESULTS / "baseline_ddpm_samples.png")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
