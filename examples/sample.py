#!/usr/bin/env python
"""Sample from a saved pipeline: a class-conditional grid (one row per class, or an unconditional grid), and
completions of test images from their first token rows (originals, then each completion, row by row).

    python examples/sample.py --pipeline outputs/ar-pipeline --output_dir outputs/samples
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hf_vqgen import VQGenPipeline
from hf_vqgen.feature_extractors import load_split_images
from hf_vqgen.training.images import image_grid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="Pipeline folder or Hub repo id.")
    parser.add_argument("--output_dir", default="samples")
    parser.add_argument("--samples_per_class", type=int, default=8)
    parser.add_argument("--guidance_scale", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--top_p", type=float, default=None)
    parser.add_argument("--dataset_name", default="fashion_mnist", help="Source of the images to complete.")
    parser.add_argument("--num_completions", type=int, default=8, help="Test images to complete (0: none).")
    parser.add_argument("--prefix_rows", type=int, nargs="+", default=None, help="Default: a quarter and a half.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples_per_class < 1 or args.num_completions < 0:
        parser.error("--samples_per_class must be >= 1 and --num_completions >= 0")
    return args


def main(args: argparse.Namespace) -> dict[str, Path]:
    pipeline = VQGenPipeline.from_pretrained(args.pipeline)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sampling = {"guidance_scale": args.guidance_scale, "temperature": args.temperature, "top_k": args.top_k}
    sampling["top_p"] = args.top_p
    layout, written = pipeline.layout, {}

    # 1. a grid: one row per class (or 8 rows unconditionally)
    rows = layout.num_classes or 8
    labels = torch.arange(rows).repeat_interleave(args.samples_per_class) if layout.num_classes else None
    generator = torch.Generator(device=pipeline.device).manual_seed(args.seed)
    samples = pipeline(rows * args.samples_per_class, class_labels=labels, generator=generator, output_type="pt",
                       **sampling)  # fmt: skip
    written["grid"] = output_dir / "samples.png"
    image_grid(samples.images * 2 - 1, columns=args.samples_per_class).save(written["grid"])

    # 2. completions of test images from their top token rows
    if args.num_completions:
        config = pipeline.vqvae.config
        originals = load_split_images(
            args.dataset_name, "test", config.sample_size, config.in_channels, args.num_completions
        )
        prefix_rows = args.prefix_rows or [layout.grid_height // 4, layout.grid_height // 2]
        strips = [originals]
        for num_rows in prefix_rows:
            completed = pipeline(image=originals, num_prefix_rows=num_rows, output_type="pt",
                                 generator=torch.Generator(device=pipeline.device).manual_seed(args.seed), **sampling)  # fmt: skip
            strips.append(completed.images * 2 - 1)
        written["completions"] = output_dir / "completions.png"
        image_grid(torch.cat(strips), columns=len(originals)).save(written["completions"])
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


if __name__ == "__main__":
    main(parse_args())
