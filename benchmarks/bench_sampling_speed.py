#!/usr/bin/env python
"""Sampling speed of saved pipelines on their own grids (read from their configs): the autoregressive prior with its
KV cache (the pipeline's loop) and with full recompute at every step (the original method), and the discrete-diffusion
prior at each `--steps`; latency and images/s at each batch size, the FLOPs of one call and the GFLOP/s they make
against this machine's fp32 matmul peak measured in the same run, the peak RSS of each configuration, and derived: the
KV cache's speed-up, the AR / diffusion latency ratio at batch 1, and the batch size where AR overtakes diffusion.

    python benchmarks/bench_sampling_speed.py --ar_pipeline benchmarks/results/runs/ar \
        --diffusion_pipeline benchmarks/results/runs/diffusion-1 [--batch_sizes 1 4 16 64] [--threads 1]

Writes benchmarks/results/sampling_speed.json (`--results_file`) and prints a table. Timing: best of `--repeats`
calls after a warm-up call, with output_type="token_ids" (no decoding). FLOPs: one more, untimed call under
`torch.utils.flop_counter.FlopCounterMode` (attention counted as full, unmasked, as the kernel is charged). Peak RSS:
the process's high-water mark (VmHWM) reset before each configuration's warm-up and read after its timed calls, so it
holds the loaded pipeline plus that configuration's sampling; where the mark cannot be reset (no /proc/self/clear_refs)
it is the process's high-water mark so far (`rss_scope` says which). Run it alone, under OpenMP's default wait policy
(see bench_ar_sampling.py).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import (
    RESULTS,
    crossover_batch_size,
    machine,
    peak_rss_mib,
    relative,
    reset_peak_rss,
    rss_mib,
    time_calls,
    write_report,
)
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline, load_pipeline
from hf_vqgen.pipelines.autoregressive_sampling import build_input_ids, next_tokens, sample_with_recompute


SMOKE = {"batch_sizes": [1, 2], "recompute_batch_sizes": [1, 2], "steps": [2], "repeats": 1, "matmul_size": 256}


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# CPU attention runs as this kernel, which FlopCounterMode has no formula for: charged as its other SDPA kernels are
FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


# timing


class OverBudget(Exception):
    """A configuration ran past its time budget."""


@dataclass
class Deadline:
    """When a configuration must stop (`math.inf`: never); checked by the recompute loop at every token."""

    at: float = math.inf

    def check(self) -> None:
        if time.perf_counter() > self.at:
            raise OverBudget


def matmul_peak(size: int, repeats: int = 5) -> float:
    """GFLOP/s of the best of `repeats` fp32 (size, size) @ (size, size) products at the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / time_calls(lambda: torch.mm(a, b), repeats).best / 1e9  # a peak: the best call


def measure(call, batch_size: int, repeats: int, budget_s: float | None, deadline: Deadline) -> dict:
    """Latency (median of `repeats` after a warm-up), images/s, peak RSS and FLOPs of `call()` (sampling `batch_size`
    images); `budget_s` bounds all of it when `call` checks `deadline`."""
    deadline.at = time.perf_counter() + budget_s if budget_s is not None else math.inf
    before = rss_mib()
    reset_peak_rss()
    timing = time_calls(call, repeats)  # one warm-up: first calls allocate and pick kernels
    peak = peak_rss_mib()
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter:
        call()
    deadline.at = math.inf
    latency, gflop = timing.median, counter.get_total_flops() / 1e9
    return {
        "latency_s": latency,
        "images_per_s": batch_size / latency,
        "gflop_per_call": gflop,
        "gflop_per_s": gflop / latency,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
    }


# samplers: batch size -> a call sampling that many token grids


def class_labels(layout, batch_size: int) -> torch.Tensor | None:
    return torch.arange(batch_size) % layout.num_classes if layout.num_classes else None


def pipeline_sampler(pipeline, guidance_scale: float, **kwargs):
    """The pipeline's own `__call__` (AR: the KV-cached loop; diffusion: `num_inference_steps` in `kwargs`)."""

    def for_batch(batch_size: int):
        labels, generator = class_labels(pipeline.layout, batch_size), torch.Generator().manual_seed(0)
        return lambda: pipeline(
            batch_size, class_labels=labels, guidance_scale=guidance_scale, generator=generator,
            output_type="token_ids", **kwargs,
        )  # fmt: skip

    return for_batch


def recompute_sampler(pipeline: VQGenPipeline, guidance_scale: float, deadline: Deadline):
    """The AR prior recomputing the whole sequence at every token, with the pipeline's step function."""
    layout = pipeline.layout

    def for_batch(batch_size: int):
        guided = guidance_scale != 1.0
        input_ids = build_input_ids(layout, batch_size, class_labels(layout, batch_size), None, guided)
        mask, generator = layout.code_mask(), torch.Generator().manual_seed(0)

        def step(logits: torch.Tensor) -> torch.Tensor:
            deadline.check()
            return next_tokens(logits, mask, guidance_scale, 1.0, None, None, generator)

        return lambda: sample_with_recompute(pipeline.prior, input_ids, layout.num_tokens, step)

    return for_batch


def run_sampler(name: str, for_batch, batch_sizes: list[int], args, budget_s=None, deadline=None) -> dict:
    """One sampler at each batch size (ascending); once one runs past `budget_s`, it and the larger ones are skipped."""
    rows, skipped, deadline = {}, None, deadline or Deadline()
    for batch_size in sorted(batch_sizes):
        if skipped is None:
            try:
                rows[str(batch_size)] = measure(for_batch(batch_size), batch_size, args.repeats, budget_s, deadline)
            except OverBudget:
                skipped = f"over --max_recompute_seconds {budget_s:g} at batch {batch_size}"
        if skipped is not None:
            rows[str(batch_size)] = {"skipped": skipped}
        print(f"{name} batch {batch_size}: {rows[str(batch_size)]}", file=sys.stderr, flush=True)
    return rows


def load(path: Path, kind: type, argument: str):
    pipeline = load_pipeline(path)
    if not isinstance(pipeline, kind):
        raise SystemExit(f"{argument} {path} holds a {type(pipeline).__name__}; expected a {kind.__name__}.")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def describe(pipeline) -> dict:
    layout, model = pipeline.layout, pipeline.prior_model
    described = {"grid": [layout.grid_height, layout.grid_width], "num_tokens": layout.num_tokens}
    described |= {"num_codes": layout.num_codes, "num_classes": layout.num_classes}
    described["parameters"] = sum(p.numel() for p in model.parameters())
    if pipeline.components.get("scheduler") is not None:
        described |= {key: pipeline.scheduler.config[key] for key in ("corruption", "sampler")}
    return described


def measure_ar(args, samplers: dict, priors: dict) -> None:
    pipeline = load(args.ar_pipeline, VQGenPipeline, "--ar_pipeline")
    priors["ar"] = describe(pipeline)
    steps = pipeline.layout.num_tokens  # one forward per token
    cached = run_sampler("ar_kv_cache", pipeline_sampler(pipeline, args.guidance_scale), args.batch_sizes, args)
    samplers["ar_kv_cache"] = {"prior": "ar", "steps": steps, "batch_sizes": cached}
    deadline = Deadline()
    recompute = recompute_sampler(pipeline, args.guidance_scale, deadline)
    rows = run_sampler(
        "ar_recompute", recompute, args.recompute_batch_sizes, args, args.max_recompute_seconds, deadline
    )
    samplers["ar_recompute"] = {"prior": "ar", "steps": steps, "batch_sizes": rows}


def measure_diffusion(args, samplers: dict, priors: dict) -> None:
    pipeline = load(args.diffusion_pipeline, DiscreteDiffusionPipeline, "--diffusion_pipeline")
    priors["diffusion"] = describe(pipeline)
    for steps in args.steps:
        name = f"diffusion_{steps}_steps"
        sampler = pipeline_sampler(pipeline, args.guidance_scale, num_inference_steps=steps)
        rows = run_sampler(name, sampler, args.batch_sizes, args)
        samplers[name] = {"prior": "diffusion", "steps": steps, "batch_sizes": rows}


# derived figures

ROW = "{:<22}{:>6}{:>11}{:>10}{:>11}{:>9}{:>8}{:>13}"


def _measured(samplers: dict, name: str) -> dict[int, dict]:
    rows = samplers.get(name, {}).get("batch_sizes", {})
    return {int(batch): row for batch, row in rows.items() if "latency_s" in row}


def derived(samplers: dict, steps: list[int]) -> dict:
    """KV-cache speed-up per batch size; AR / diffusion latency at batch 1 and the crossover batch size per step
    count (the smallest measured batch at which the KV-cached AR prior makes more images/s than the diffusion prior)."""
    cached, recompute = _measured(samplers, "ar_kv_cache"), _measured(samplers, "ar_recompute")
    speedup = {str(b): recompute[b]["latency_s"] / cached[b]["latency_s"] for b in sorted(cached.keys() & recompute)}
    latency_ratio, crossover = {}, {}
    for step_count in steps:
        diffusion = _measured(samplers, f"diffusion_{step_count}_steps")
        if not cached or not diffusion:
            continue
        if 1 in cached and 1 in diffusion:
            latency_ratio[str(step_count)] = cached[1]["latency_s"] / diffusion[1]["latency_s"]
        crossover[str(step_count)] = crossover_batch_size(cached, diffusion)
    return {
        "kv_cache_speedup": speedup,
        "ar_over_diffusion_latency_batch1": latency_ratio,
        "crossover_batch_size": crossover,
    }


def table(report: dict) -> str:
    peak = report["matmul_peak"]["gflop_per_s"]
    size, threads = report["matmul_peak"]["size"], report["machine"]["torch_threads"]
    header = ("sampler", "batch", "latency s", "images/s", "GFLOP/call", "GFLOP/s", "% peak", "peak RSS MiB")
    lines = [f"matmul peak: {peak:.1f} GFLOP/s ({size}x{size} fp32, {threads} threads)", ROW.format(*header)]
    for name, sampler in report["samplers"].items():
        for batch, row in sampler["batch_sizes"].items():
            if "skipped" in row:
                lines.append(f"{name:<22}{batch:>6}  skipped: {row['skipped']}")
                continue
            cells = [row[key] for key in ("latency_s", "images_per_s", "gflop_per_call", "gflop_per_s")]
            cells += [f"{100 * row['fraction_of_matmul_peak']:.1f}%", f"{row['peak_rss_mib']:.0f}"]
            lines.append(
                ROW.format(name, batch, *(f"{cell:.4g}" if isinstance(cell, float) else cell for cell in cells))
            )
    for key in ("kv_cache_speedup", "ar_over_diffusion_latency_batch1", "crossover_batch_size"):
        values = ", ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in report[key].items())
        lines.append(f"{key}: {values or 'n/a'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ar_pipeline", type=Path, default=None, help="A saved VQGenPipeline folder.")
    parser.add_argument("--diffusion_pipeline", type=Path, default=None, help="A saved DiscreteDiffusionPipeline.")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--recompute_batch_sizes", type=int, nargs="+", default=[1, 64],
                        help="Batch sizes for AR full recompute (slow: quadratic in the grid's tokens).")  # fmt: skip
    parser.add_argument("--max_recompute_seconds", type=float, default=900.0,
                        help="Time budget of AR recompute at one batch size (warm-up, repeats, FLOP count); past "
                        "it that batch size and larger ones are skipped.")  # fmt: skip
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16], help="Diffusion sampling steps.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed calls per configuration (best one counts).")
    parser.add_argument("--guidance_scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice).")
    parser.add_argument("--matmul_size", type=int, default=2048, help="Side of the matmul timed for the peak.")
    parser.add_argument("--results_file", type=Path, default=RESULTS / "sampling_speed.json")
    parser.add_argument("--smoke", action="store_true", help=f"A few seconds' check: {SMOKE}.")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.ar_pipeline is None and args.diffusion_pipeline is None:
        parser.error("give --ar_pipeline, --diffusion_pipeline or both")
    for name in ("ar_pipeline", "diffusion_pipeline"):
        path = getattr(args, name)
        if path is not None and not (path / "model_index.json").is_file():
            parser.error(f"--{name} {path}: no model_index.json there (a saved pipeline folder is expected)")
    for name in ("batch_sizes", "recompute_batch_sizes", "steps"):
        if min(getattr(args, name)) < 1:
            parser.error(f"--{name} must be positive integers, got {getattr(args, name)}")
    if args.repeats < 1 or args.matmul_size < 1 or args.max_recompute_seconds <= 0:
        parser.error("--repeats, --matmul_size and --max_recompute_seconds must be positive")
    return args


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    matmul_before = matmul_peak(args.matmul_size)
    samplers, priors = {}, {}
    with torch.no_grad():
        if args.ar_pipeline is not None:
            measure_ar(args, samplers, priors)
        if args.diffusion_pipeline is not None:
            measure_diffusion(args, samplers, priors)
    matmul_after = matmul_peak(args.matmul_size)  # again: a busy machine shows as a gap between the two
    peak = max(matmul_before, matmul_after)
    for sampler in samplers.values():
        for row in sampler["batch_sizes"].values():
            if "gflop_per_s" in row:
                row["fraction_of_matmul_peak"] = row["gflop_per_s"] / peak
    paths = {"ar": args.ar_pipeline, "diffusion": args.diffusion_pipeline}
    report = {
        "benchmark": "sampling_speed",
        "machine": machine(),
        "scored": {name: relative(path) for name, path in paths.items() if path is not None},
        "settings": vars(args),
        "priors": priors,
        "matmul_peak": {
            "size": args.matmul_size,
            "gflop_per_s": peak,
            "before_gflop_per_s": matmul_before,
            "after_gflop_per_s": matmul_after,
        },  # fmt: skip
        "rss_scope": "per configuration" if reset_peak_rss() else "process high-water mark",
        "samplers": samplers,
        **derived(samplers, args.steps),
    }
    report = write_report(args.results_file, report, echo=False)
    print(table(report))
    print(f"Wrote {relative(args.results_file)}")


if __name__ == "__main__":
    main()
