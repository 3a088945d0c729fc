#!/usr/bin/env python
"""Autoregressive sampling speed on the Fashion-MNIST grid (7x7 tokens, 256 codes, 10 classes): the pipeline's
KV-cached loop vs full recompute at every step (the original method), measured side by side at the same batch.

    python benchmarks/bench_ar_sampling.py [--pipeline outputs/ar-pipeline] [--batch_size 64]

Without --pipeline a prior of the recipe's size with random weights is timed (speed does not depend on the weights).
Writes benchmarks/results/ar_sampling.json (ar_sampling_threads<N>.json with --threads N, a `_omp_passive` suffix
when OMP_WAIT_POLICY=PASSIVE); prints it. Run it alone, under OpenMP's default wait policy: PASSIVE (right when
several torch processes share the cores) wakes sleeping threads for each of the cached loop's small ops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_tokenizer_recipe import machine  # noqa: E402

from hf_vqgen import TokenLayout  # noqa: E402
from hf_vqgen.pipelines.autoregressive_sampling import (  # noqa: E402
    build_input_ids,
    next_tokens,
    sample_with_cache,
    sample_with_recompute,
)


def load_prior(pipeline_path: str | None, n_layer: int, n_head: int, n_embd: int) -> GPT2LMHeadModel:
    if pipeline_path:
        return GPT2LMHeadModel.from_pretrained(Path(pipeline_path) / "prior").eval()
    layout = TokenLayout(num_codes=256, grid_height=7, grid_width=7, num_classes=10)
    torch.manual_seed(0)
    return GPT2LMHeadModel(layout.gpt2_config(n_layer, n_head, n_embd)).eval()


def time_sampler(sampler, prior, layout: TokenLayout, batch_size: int, guidance_scale: float, repeats: int) -> float:
    labels = torch.arange(batch_size) % layout.num_classes
    input_ids = build_input_ids(layout, batch_size, labels, None, guided=guidance_scale != 1.0)
    mask, generator = layout.code_mask(), torch.Generator().manual_seed(0)

    def step(logits):
        return next_tokens(logits, mask, guidance_scale, 1.0, None, None, generator)

    sampler(prior, input_ids, layout.num_tokens, step)  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        sampler(prior, input_ids, layout.num_tokens, step)
        seconds.append(time.perf_counter() - start)
    return sorted(seconds)[len(seconds) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default=None)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=8)
    parser.add_argument("--n_embd", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    prior = load_prior(args.pipeline, args.n_layer, args.n_head, args.n_embd)
    layout = TokenLayout.from_config(prior.config)
    report = {"benchmark": "ar_sampling", "machine": machine(), "batch_size": args.batch_size}
    report["prior_parameters"] = sum(p.numel() for p in prior.parameters())
    report["num_tokens"] = layout.num_tokens
    with torch.no_grad():
        for guidance_scale in (1.0, 2.0):
            cached = time_sampler(sample_with_cache, prior, layout, args.batch_size, guidance_scale, args.repeats)
            full = time_sampler(sample_with_recompute, prior, layout, args.batch_size, guidance_scale, args.repeats)
            report[f"guidance_{guidance_scale:g}"] = {
                "kv_cache_images_per_s": args.batch_size / cached,
                "recompute_images_per_s": args.batch_size / full,
                "speedup": full / cached,
            }
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "ar_sampling" if args.threads is None else f"ar_sampling_threads{args.threads}"
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        print("OMP_WAIT_POLICY=PASSIVE: the cached loop's small ops pay a thread wake-up each.", file=sys.stderr)
        name += "_omp_passive"
    (results / f"{name}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
