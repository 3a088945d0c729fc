#!/usr/bin/env python
"""Benchmark: the AR pipeline's sampling loop with the dynamic KV cache (the default), the static (preallocated)
cache, and the static cache with the prior compiled (`pipeline.compile_prior()`), on this machine. Checks that the
three give the same codes, then times them (best of `--repeats`, after a warm-up call that also compiles).

    python benchmarks/bench_ar_static_cache.py --pipeline pretrained/fashion-mnist-ar --batch_sizes 1 64

Writes `benchmarks/results/ar_static_cache.json` (or `--results_file`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import RESULTS, machine, relative, time_calls, write_report

from hf_vqgen import load_pipeline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", type=Path, required=True, help="A saved VQGenPipeline.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--compile_backend", default="inductor")
    parser.add_argument("--results_file", type=Path, default=RESULTS / "ar_static_cache.json")
    return parser.parse_args(argv)


def timed(pipeline, batch_size: int, repeats: int, **kwargs) -> tuple[float, torch.Tensor]:
    """Median wall time of `repeats` calls after one warm-up call, and the codes of seed 0."""
    labels = (torch.arange(batch_size) % pipeline.layout.num_classes).tolist() if pipeline.layout.num_classes else None
    call = {"batch_size": batch_size, "class_labels": labels, "output_type": "token_ids", **kwargs}
    codes = pipeline(generator=torch.Generator().manual_seed(0), **call).token_ids  # warm-up (and compilation)
    timing = time_calls(lambda: pipeline(generator=torch.Generator().manual_seed(0), **call), repeats, warmups=0)
    return timing.median, codes


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = load_pipeline(args.pipeline)
    pipeline.set_progress_bar_config(disable=True)
    rows, reference = {}, {}
    for batch_size in args.batch_sizes:
        dynamic, dynamic_codes = timed(pipeline, batch_size, args.repeats)
        static, static_codes = timed(pipeline, batch_size, args.repeats, static_cache=True)
        rows[batch_size], reference[batch_size] = {"dynamic_cache_s": dynamic, "static_cache_s": static}, dynamic_codes
        rows[batch_size]["static_same_codes"] = bool(torch.equal(dynamic_codes, static_codes))
    compile_start = time.perf_counter()
    pipeline.compile_prior(backend=args.compile_backend, dynamic=False)
    for batch_size in args.batch_sizes:
        compiled, compiled_codes = timed(pipeline, batch_size, args.repeats)
        row = rows[batch_size]
        row["static_compiled_s"] = compiled
        row["compiled_same_codes"] = bool(torch.equal(compiled_codes, reference[batch_size]))
        for key in ("dynamic_cache_s", "static_cache_s", "static_compiled_s"):
            row[key.replace("_s", "_images_per_s")] = batch_size / row[key]
        print(
            f"batch {batch_size:4d}: dynamic {row['dynamic_cache_images_per_s']:8.1f} img/s, static "
            f"{row['static_cache_images_per_s']:8.1f}, static + compile {row['static_compiled_images_per_s']:8.1f}"
        )
    report = {
        "benchmark": "ar_static_cache",
        "machine": machine(),
        "scored": relative(args.pipeline),
        "settings": vars(args) | {"num_tokens": pipeline.layout.num_tokens},
        "compile_and_warm_up_seconds": time.perf_counter() - compile_start,
        "batch_sizes": rows,
    }
    write_report(args.results_file, report)


if __name__ == "__main__":
    main()
