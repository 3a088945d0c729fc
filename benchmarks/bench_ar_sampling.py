#!/usr/bin/env python
"""Autoregressive sampling speed of a trained pipeline's prior on its own grid (the prior's config: grid, codes,
classes): the pipeline's KV-cached loop vs full recompute at every step (the original method), measured side by side
at the same batch. Speed does not depend on the weights, only on the prior's size and grid.

    python benchmarks/bench_ar_sampling.py [--pipeline benchmarks/results/runs/ar] [--batch_size 64] [--threads 1]

Writes benchmarks/results/ar_sampling.json (ar_sampling_threads<N>.json with --threads N, a `_omp_passive` suffix
when OMP_WAIT_POLICY=PASSIVE); prints it. Run it alone, under OpenMP's default wait policy: PASSIVE (right when
several torch processes share the cores) wakes sleeping threads for each of the cached loop's small ops.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from common import RESULTS, RUNS, machine, time_calls, write_report
from transformers import GPT2LMHeadModel

from hf_vqgen import TokenLayout
from hf_vqgen.pipelines.autoregressive_sampling import (
    build_input_ids,
    next_tokens,
    sample_with_cache,
    sample_with_recompute,
)


def time_sampler(sampler, prior, layout: TokenLayout, batch_size: int, guidance_scale: float, repeats: int) -> float:
    labels = torch.arange(batch_size) % layout.num_classes if layout.num_classes else None
    input_ids = build_input_ids(layout, batch_size, labels, None, guided=guidance_scale != 1.0)
    mask, generator = layout.code_mask(), torch.Generator().manual_seed(0)

    def step(logits):
        return next_tokens(logits, mask, guidance_scale, 1.0, None, None, generator)

    return time_calls(lambda: sampler(prior, input_ids, layout.num_tokens, step), repeats).median


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", type=Path, default=RUNS / "ar", help="A saved autoregressive pipeline folder.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--guidance_scales", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not (args.pipeline / "prior" / "config.json").is_file():
        parser.error(f"no autoregressive pipeline in {args.pipeline}: run benchmarks/bench_ar_recipe.py first")
    return args


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    prior = GPT2LMHeadModel.from_pretrained(args.pipeline / "prior").eval()
    layout = TokenLayout.from_config(prior.config)
    report = {"benchmark": "ar_sampling", "machine": machine(), "scored": args.pipeline, "settings": vars(args)}
    report["batch_size"] = args.batch_size
    report["prior_parameters"] = sum(p.numel() for p in prior.parameters())
    report["num_tokens"] = layout.num_tokens
    report["grid"] = [layout.grid_height, layout.grid_width]
    with torch.no_grad():
        for guidance_scale in args.guidance_scales:
            if guidance_scale != 1.0 and not layout.num_classes:
                continue  # guidance needs a class-conditional prior
            cached = time_sampler(sample_with_cache, prior, layout, args.batch_size, guidance_scale, args.repeats)
            full = time_sampler(sample_with_recompute, prior, layout, args.batch_size, guidance_scale, args.repeats)
            report[f"guidance_{guidance_scale:g}"] = {
                "kv_cache_images_per_s": args.batch_size / cached,
                "recompute_images_per_s": args.batch_size / full,
                "speedup": full / cached,
            }
    name = "ar_sampling" if args.threads is None else f"ar_sampling_threads{args.threads}"
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        print("OMP_WAIT_POLICY=PASSIVE: the cached loop's small ops pay a thread wake-up each.", file=sys.stderr)
        name += "_omp_passive"
    write_report(args.results_dir / f"{name}.json", report)


if __name__ == "__main__":
    main()
