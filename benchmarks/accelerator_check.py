#!/usr/bin/env python
"""What an accelerator machine does with this package, in one command: the environment; training throughput and peak
memory of the emoji recipes' models (tokenizer, AR prior, diffusion prior, and a larger prior for scaling) at bf16,
without and with `torch.compile`; sampling latency of both priors at their 256-token grid; and, on >= 2 GPUs, the
prior steps again under `accelerate launch` with 2 processes (`accelerator_two_processes.py`).

    make gpu-check    # = python benchmarks/accelerator_check.py: <= 8 minutes on one H100/H200-class GPU
    python benchmarks/accelerator_check.py --smoke --results_file /tmp/check.json    # CPU, tiny models, seconds

It needs a CUDA build of torch in .venv: `make` pip-installs torch==TORCH_VERSION (the Makefile's), which on a CUDA
machine with pip's default index is a CUDA build; a CPU build is refused here (rebuild .venv, or use the machine's own
torch: `python3 -m venv --system-site-packages .venv && touch .venv/.torch && make gpu-check`).

No data is needed: the models are the recipes' (examples/recipes/{vqvae,ar,diffusion}_emoji.args), trained on
synthetic data with the scripts' own step (`accelerator_workloads.py`); the figures are throughput and memory, not
quality. Images/s count the steps after `--warmup_steps`; tokens/s = images/s x the prior's input length; peak memory
is `torch.cuda.max_memory_allocated` per run on CUDA, the RSS high-water mark on CPU; `compile` is
`torch.compile(model)` after `prepare`. Sampling: weights in the training precision's dtype, token ids only (no
decoding), no guidance, classes cycled, the median of `--repeats` calls after a warm-up call; AR with the KV cache,
the static cache, and static cache + `VQGenPipeline.compile_prior`; diffusion at each `--diffusion_steps`; the
crossover is the smallest batch at which an AR sampler makes more images/s. On CPU `--smoke` skips the compile
variants unless `--smoke_compile` (compiling takes minutes there).

Sections run in the order of `main` (compile variants last); once `--max_seconds` (after the imports) are spent, a run
stops or is skipped with the reason recorded. Writes benchmarks/results/accelerator_check.json and .md
(`--results_file`; `--smoke` needs one outside benchmarks/results), prints the tables, exits 1 if a run failed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from accelerator_report import markdown
from accelerator_two_processes import multi_gpu_section, worker
from accelerator_workloads import (
    IN_PROCESS,
    START,
    Budget,
    Workload,
    build_workloads,
    guarded,
    log,
    peak_memory_mib,
    recipe_arguments,
    recipe_num_classes,
    release,
    reset_peak_memory,
    synchronize,
    train_run,
)
from common import RECIPES, RESULTS, crossover_batch_size, machine, relative, time_calls, write_report

from hf_vqgen import VQGenPipeline
from hf_vqgen.training.script_arguments import parse_prior_arguments


SMOKE = {"train_steps": 3, "warmup_steps": 1, "batch_sizes": [1, 2], "diffusion_steps": [2, 4], "repeats": 1,
         "large_prior": [2, 2, 32]}  # fmt: skip
COMPILE_RESERVE_S = 90  # a compile variant starts only with this much budget left (compiling its first step)


# sampling


def ar_static_compiled(vqvae, prior, args):
    """The AR pipeline with a static cache and its prior compiled (`VQGenPipeline.compile_prior`), its call kwargs."""
    pipeline = VQGenPipeline(vqvae=vqvae, prior=prior)
    pipeline.compile_prior(backend=args.compile_backend, mode=args.compile_mode)
    return pipeline, {"static_cache": True}


def time_sampler(pipeline, kwargs: dict, batch_size: int, args, device) -> dict:
    num_classes = pipeline.layout.num_classes
    labels = torch.arange(batch_size, device=device) % num_classes if num_classes else None
    generator = torch.Generator(device=device).manual_seed(args.seed)

    reset_peak_memory(device)
    timing = time_calls(  # the warm-up call allocates, picks kernels, compiles
        lambda: pipeline(batch_size, class_labels=labels, generator=generator, output_type="token_ids", **kwargs),
        args.repeats,
        synchronize=lambda: synchronize(device),
    )
    return {"latency_s": timing.median, "images_per_s": batch_size / timing.median, "warmup_call_s": timing.warmup_s,
            "peak_memory_mib": peak_memory_mib(device)}  # fmt: skip


def run_sampler(name: str, make, args, device, budget: Budget, reserve: float = 0.0) -> dict:
    """One sampler at each batch size (ascending), each skipped once the budget is spent."""
    if budget.skip(reserve):
        return budget.skip(reserve)
    pipeline, kwargs = make()
    pipeline.set_progress_bar_config(disable=True)
    rows = {}
    for batch_size in sorted(args.batch_sizes):
        run = lambda batch_size=batch_size: time_sampler(pipeline, kwargs, batch_size, args, device)  # noqa: E731
        rows[str(batch_size)] = budget.skip() or guarded(f"sampling {name} batch {batch_size}", run)
    return {"batch_sizes": rows, "options": kwargs}


def sampling_section(built: dict[str, Workload], vqvae, args, device, budget: Budget, compiled: bool) -> dict:
    """Eager: the AR KV cache (and static cache) and diffusion at each step count; compiled: `ar_static_compiled`.
    The models are fresh (speed does not depend on the weights), in eval mode, in the training precision's dtype."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision, torch.float32)
    vqvae = vqvae.to(device).eval()
    set_seed(args.seed)
    ar, diffusion = (built[name].build().to(device, dtype).eval() for name in ("ar", "diffusion"))
    ar_pipeline, diffusion_pipeline = built["ar"].pipeline, built["diffusion"].pipeline
    if compiled:
        make = lambda: ar_static_compiled(vqvae, ar, args)  # noqa: E731
        reserve = COMPILE_RESERVE_S * (not args.smoke)
        return {"ar_static_cache_compile": run_sampler("ar_static_cache_compile", make, args, device, budget, reserve)}
    samplers = {"ar_kv_cache": lambda: (ar_pipeline(vqvae, ar), {}),
                "ar_static_cache": lambda: (ar_pipeline(vqvae, ar), {"static_cache": True})}  # fmt: skip
    for steps in args.diffusion_steps:
        samplers[f"diffusion_{steps}_steps"] = lambda steps=steps: (
            diffusion_pipeline(vqvae, diffusion),
            {"num_inference_steps": steps},
        )
    rows = {name: run_sampler(name, make, args, device, budget) for name, make in samplers.items()}
    return rows | {"dtype": str(dtype).removeprefix("torch.")}


def crossovers(sampling: dict) -> dict:
    """AR sampler -> diffusion step count -> the crossover batch size (`common.crossover_batch_size`)."""

    def measured(name):
        rows = sampling[name].get("batch_sizes", {}) if isinstance(sampling[name], dict) else {}
        return {int(batch): row for batch, row in rows.items() if "images_per_s" in row}

    diffusion = {name.split("_")[1]: measured(name) for name in sampling if name.startswith("diffusion_")}
    return {
        ar: {steps: crossover_batch_size(measured(ar), rows) for steps, rows in diffusion.items() if rows}
        for ar in sampling
        if ar.startswith("ar_") and measured(ar)
    }


# report


def environment(args, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    peak = "torch.cuda.max_memory_allocated, per run" if cuda else "the process's RSS high-water mark"
    record = {"device": device.type, "gpu_name": None, "cuda": torch.version.cuda} | machine()
    return record | {"mixed_precision": args.mixed_precision, "peak_memory": peak}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer_recipe", type=Path, default=RECIPES / "vqvae_emoji.args")
    parser.add_argument("--ar_recipe", type=Path, default=RECIPES / "ar_emoji.args")
    parser.add_argument("--diffusion_recipe", type=Path, default=RECIPES / "diffusion_emoji.args")
    parser.add_argument("--num_classes", type=int, default=None, help="Default: from the recipes' dataset schema.")
    parser.add_argument("--train_steps", type=int, default=100)
    parser.add_argument("--warmup_steps", type=int, default=10, help="First steps left out of the throughput.")
    parser.add_argument(
        "--large_prior", type=int, nargs=3, default=[12, 12, 768], metavar=("LAYERS", "HEADS", "WIDTH")
    )
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 64, 256], help="Sampling batch sizes.")
    parser.add_argument("--diffusion_steps", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--repeats", type=int, default=3, help="Timed sampling calls (the median counts).")
    parser.add_argument("--mixed_precision", default="auto", choices=("auto", "no", "bf16", "fp16"),
                        help="auto: bf16 where the device has it (CPUs included), else no.")  # fmt: skip
    parser.add_argument("--compile_backend", default="inductor")
    parser.add_argument("--compile_mode", default=None, help="torch.compile's mode, e.g. reduce-overhead.")
    parser.add_argument("--no_compile", action="store_true", help="Skip the torch.compile variants.")
    parser.add_argument("--max_seconds", type=float, default=390.0,
                        help="Budget of all sections, after the imports (a compile step may overrun it).")  # fmt: skip
    parser.add_argument("--allow_cpu", action="store_true", help="Run the full-size check without CUDA (hours).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results_file", type=Path, default=None,
                        help="Default: benchmarks/results/accelerator_check.json (and .md).")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help=f"Seconds on CPU, tiny models: {SMOKE}.")
    parser.add_argument("--smoke_compile", action="store_true", help="With --smoke on CPU: compile too (minutes).")
    parser.add_argument("--smoke_multiprocess", action="store_true",
                        help="On a machine without CUDA: the 2-process section on CPU (gloo).")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker_output", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
        results = (args.results_file or RESULTS).expanduser().resolve()
        if args.results_file is None or RESULTS.resolve() in (results, *results.parents):
            parser.error("--smoke needs a --results_file outside benchmarks/results (smoke figures are no results)")
    args.results_file = args.results_file or RESULTS / "accelerator_check.json"
    if min(args.train_steps, *args.batch_sizes, *args.diffusion_steps, args.repeats, *args.large_prior) < 1:
        parser.error("--train_steps, --batch_sizes, --diffusion_steps, --repeats and --large_prior must be >= 1")
    if not 0 <= args.warmup_steps < args.train_steps:
        parser.error("--warmup_steps must be in [0, --train_steps)")
    if not (args.smoke or args.worker or args.allow_cpu or torch.cuda.is_available()):
        parser.error(f"torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda}); run it where "
                     "it does (see the docstring), or --smoke, or --allow_cpu")  # fmt: skip
    if args.mixed_precision == "auto":
        args.mixed_precision = "bf16" if not torch.cuda.is_available() or torch.cuda.is_bf16_supported() else "no"
    if args.num_classes is None:
        args.num_classes = recipe_num_classes(recipe_arguments(args.ar_recipe, parse_prior_arguments, IN_PROCESS))
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args)
    budget, accelerator = Budget(args.max_seconds), Accelerator(mixed_precision=args.mixed_precision)
    device = accelerator.device
    report = {"benchmark": "accelerator_check", "environment": environment(args, device)}
    log(f"environment: {report['environment']}")
    built, vqvae = build_workloads(args, device, ("tokenizer", "ar", "diffusion", "ar_large", "diffusion_large"))
    no_compile = None
    if args.no_compile or (args.smoke and device.type == "cpu" and not args.smoke_compile):
        no_compile = {"skipped": "--no_compile" if args.no_compile else "CPU --smoke: compiling takes minutes on CPU"}
    training = {name: {} for name in built}

    def train(name: str, compiled: bool) -> None:
        reserve = COMPILE_RESERVE_S if compiled and not args.smoke else 0
        skip = (no_compile if compiled else None) or budget.skip(reserve)
        what = f"training {name} {'compile' if compiled else 'eager'}"
        run = lambda: train_run(accelerator, built[name], args, compiled, budget)  # noqa: E731
        training[name]["compile" if compiled else "eager"] = skip or guarded(what, run)
        release(accelerator)

    # eager first, the 2-process comparison with it, then the compile variants (minutes of compiling) last
    for name in built:
        train(name, compiled=False)
    sampling = sampling_section(built, vqvae, args, device, budget, compiled=False)
    release(accelerator)
    report["multi_gpu"] = guarded("2 processes", lambda: multi_gpu_section(args, training, budget))
    for name in ("tokenizer", "ar", "diffusion"):
        train(name, compiled=True)
    if no_compile:
        sampling |= dict.fromkeys(("ar_static_cache_compile",), no_compile)
    else:
        sampling |= sampling_section(built, vqvae, args, device, budget, compiled=True)
    release(accelerator)
    for name in ("ar_large", "diffusion_large"):
        train(name, compiled=True)

    scored = {name: relative(built[name].recipe.recipe) for name in ("tokenizer", "ar", "diffusion")}
    report |= {"scored": scored, "settings": vars(args), "models": {k: w.description for k, w in built.items()}}
    report |= {"training": training, "sampling": sampling, "crossover_batch_size": crossovers(sampling)}
    report["elapsed_s"] = time.perf_counter() - START
    report = write_report(args.results_file, report, echo=False)
    table = markdown(report)
    args.results_file.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"Wrote {relative(args.results_file)} and {relative(args.results_file.with_suffix('.md'))}")
    if '"error"' in json.dumps(report):
        raise SystemExit("Some runs failed: their `error` entries say how (tracebacks above).")


if __name__ == "__main__":
    main()
