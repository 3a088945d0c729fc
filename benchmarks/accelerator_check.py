#!/usr/bin/env python
"""What an accelerator machine does with this package, in one command: the environment; training throughput and peak
memory of the emoji recipes' models (tokenizer, AR prior, diffusion prior, and a larger prior for scaling) at bf16,
without and with `torch.compile`; sampling latency of both priors at their 256-token grid; and, on >= 2 GPUs, the
prior steps again under `accelerate launch` with 2 processes.

    make gpu-check    # = python benchmarks/accelerator_check.py: <= 8 minutes on one H100/H200-class GPU
    python benchmarks/accelerator_check.py --smoke --results_file /tmp/check.json    # CPU, tiny models, seconds

It needs a CUDA build of torch in .venv: `make` pip-installs torch==TORCH_VERSION (the Makefile's), which on a CUDA
machine with pip's default index is a CUDA build; a CPU build is refused here (rebuild .venv, or use the machine's own
torch: `python3 -m venv --system-site-packages .venv && touch .venv/.torch && make gpu-check`).

No data is needed. The models are built in-process from the arguments of examples/recipes/{vqvae,ar,diffusion}_emoji
.args, parsed by the training scripts' own argument parsers (`hf_vqgen.training.script_arguments`: the same
defaults and checks; the tokenizer built by the same `build_tokenizer`) and trained on data made in-process: random RGB images at the recipe's
resolution, and learnable token grids at the tokenizer's grid (`synthetic_token_grids`), so that the loss falls and
two runs can be compared. The figures are throughput and memory, not quality.

Training: `--train_steps` steps per model with the scripts' own step (`backward_and_step`: finite-loss check,
backward, clipping, AdamW, the recipe's LR schedule) under `Accelerator(mixed_precision=...)` (bf16 where the device
has it); images/s over the steps after the first `--warmup_steps` (allocator warm-up, compilation); tokens/s =
images/s x the prior's input length. Peak memory: `torch.cuda.max_memory_allocated` per run on CUDA, the process's
RSS high-water mark on CPU. `compile`: `torch.compile(model)` after `prepare`, as Accelerate's `dynamo_backend` does.
Sampling: the priors' weights in the training precision's dtype, `output_type="token_ids"` (no decoding), a generator
on the device, no guidance, classes cycled; best of `--repeats` calls after a warm-up call. AR: the pipeline's KV
cache; its static cache, and static cache + compile (`VQGenPipeline.compile_prior`), where this version has them
(feature-detected; else recorded as not available, and `torch.compile(prior)` under the KV cache is timed instead).
Diffusion: at each `--diffusion_steps`. Crossover: the smallest batch at which an AR sampler makes more images/s.
Multi-GPU: `MULTI_GPU_RULE`. On CPU `--smoke` the compile variants are skipped unless `--smoke_compile` (compiling
takes minutes there).

Budget: the sections run in the order of `main` (compile variants last); a run stops, or is skipped, with the reason
recorded, once `--max_seconds` (390, counted after the imports) are spent. Writes benchmarks/results/
accelerator_check.json and .md (`--results_file`; `--smoke` needs one outside benchmarks/results) and prints the
tables; exits 1 if a run failed.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import accelerate
import diffusers
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import set_seed
from common import (
    RECIPES,
    RESULTS,
    ROOT,
    crossover_batch_size,
    machine,
    peak_rss_mib,
    relative,
    reset_peak_rss,
    time_calls,
    write_report,
)
from diffusers.optimization import get_scheduler

from hf_vqgen import VQGenPipeline, VQVAEModel
from hf_vqgen.data.emoji import EMOJI, EMOJI_FEATURES
from hf_vqgen.training import VQGANLoss, VQGANLossConfig
from hf_vqgen.training.loop import backward_and_step
from hf_vqgen.training.prior_batches import PRIOR_ADAM_BETAS, weight_decay_groups
from hf_vqgen.training.prior_kinds import PRIOR_KINDS, PriorConfig
from hf_vqgen.training.script_arguments import build_tokenizer, parse_prior_arguments, parse_tokenizer_arguments


# --smoke: the recipes' models shrunk to seconds on CPU (16x16 RGB -> 4x4 grids of 16 codes; 1-layer priors)
SMOKE = {"train_steps": 3, "warmup_steps": 1, "batch_sizes": [1, 2], "diffusion_steps": [2, 4], "repeats": 1,
         "large_prior": [2, 2, 32]}  # fmt: skip
SMOKE_TOKENIZER = [
    "--resolution",
    "16",
    "--block_out_channels",
    "4",
    "8",
    "8",
    "--norm_num_groups",
    "4",
    "--latent_channels",
    "8",
    "--vq_embed_dim",
    "4",
    "--num_vq_embeddings",
    "16",
    "--train_batch_size",
    "4",
]
SMOKE_PRIOR = ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--train_batch_size", "4"]
IN_PROCESS = ["--vqvae_name_or_path", "(built in-process)"]  # train_prior.py requires one; the check never reads it
POOL = 4  # distinct synthetic batches, cycled
COMPILE_RESERVE_S = 90  # a compile variant starts only with this much budget left (compiling its first step)
MULTI_GPU_RESERVE_S = 60  # process start-up, process group, two runs
LOSS_TOLERANCE = (0.1, 0.05)  # nats, relative
MULTI_GPU_RULE = (
    "the AR and diffusion prior steps under `accelerate launch --multi_gpu --num_processes 2` with the same global "
    "batch (the recipe's --train_batch_size split over the processes), initial weights and batches as 1 process; "
    "each process draws its own class dropout and corruption, so the losses agree statistically, not bitwise: equal "
    "when both ran the same steps and the mean loss of the last 10 steps is within max({:g} nats, {:.0%}) of 1 "
    "process's; throughput_ratio = 2-process images/s / 1-process images/s"
).format(*LOSS_TOLERANCE)
START = time.perf_counter()


def log(line: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {line}", file=sys.stderr, flush=True)


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.start + self.seconds - time.perf_counter()

    def skip(self, reserve: float = 0.0) -> dict | None:
        """A skip record when under `reserve` seconds are left, else None."""
        if self.left() > reserve:
            return None
        return {"skipped": f"--max_seconds {self.seconds:g} spent" + (f" (needs {reserve:g}s)" if reserve else "")}


# recipes and workloads


def recipe_arguments(path: Path, parse, overrides: list[str]) -> argparse.Namespace:
    """A recipe as its training script reads it (`@recipe`, then `overrides`), with the script's defaults; the
    recipe's path is kept as `recipe`."""
    args = parse([f"@{path}", *overrides])
    args.recipe = path
    return args


def recipe_num_classes(recipe: argparse.Namespace) -> int:
    """Classes of the recipe's labels from its dataset's schema (emoji: category x style = 30): no data needed."""
    if recipe.unconditional:
        return 0
    if recipe.dataset_name != EMOJI:
        raise SystemExit(f"{relative(recipe.recipe)} is not an emoji recipe: give --num_classes.")
    return math.prod(EMOJI_FEATURES[column].num_classes for column in recipe.label_columns or ["label"])


@dataclass
class Workload:
    """One model to train: a fresh model (seeded by the caller), its optimiser and loss, the recipe's LR schedule,
    global batches on the device, and for a prior its input length and pipeline."""

    build: Callable[[], torch.nn.Module]
    optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    loss: Callable[[torch.nn.Module, dict], torch.Tensor]
    recipe: argparse.Namespace  # the training script's arguments
    batches: list[dict]
    description: dict
    pipeline: Callable | None = None  # (vqvae, model) -> pipeline

    @property
    def batch_size(self) -> int:
        return self.description["global_batch_size"]


def tokenizer_workload(recipe: argparse.Namespace, device, seed: int) -> Workload:
    """Reconstruction + codebook loss (the emoji recipe has no discriminator) on random images in [-1, 1]."""
    size, batch, generator = recipe.resolution, recipe.train_batch_size, torch.Generator()
    shape = (batch, recipe.num_channels, size, size)
    generator.manual_seed(seed)
    batches = [{"pixel_values": (torch.rand(shape, generator=generator) * 2 - 1).to(device)} for _ in range(POOL)]
    criterion = VQGANLoss(VQGANLossConfig(recipe.reconstruction_loss, codebook_weight=recipe.codebook_weight))
    adam = {"lr": recipe.learning_rate, "betas": (recipe.adam_beta1, recipe.adam_beta2),
            "weight_decay": recipe.adam_weight_decay}  # fmt: skip

    def optimizer(model):
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], **adam)

    def loss(model, batch):
        output = model(batch["pixel_values"])
        return criterion.generator_loss(batch["pixel_values"], output.sample, output.commit_loss, None, 0, None)[0]

    description = {"image": list(shape[1:]), "global_batch_size": batch}
    return Workload(lambda: build_tokenizer(recipe), optimizer, loss, recipe, batches, description)


def synthetic_token_grids(layout, batch_size: int, generator: torch.Generator) -> dict:
    """Learnable grids (B, N): code i is (offset + i * (1 + class)) mod K, the offset random per grid."""
    labels = torch.randint(0, max(layout.num_classes, 1), (batch_size,), generator=generator)
    offsets = torch.randint(0, layout.num_codes, (batch_size, 1), generator=generator)
    codes = (offsets + torch.arange(layout.num_tokens) * (1 + labels[:, None])) % layout.num_codes
    return {"token_ids": codes, "label": labels}


def prior_workload(recipe: argparse.Namespace, vqvae: VQVAEModel, num_classes: int, device, seed: int) -> Workload:
    kind = PRIOR_KINDS[recipe.prior_type](PriorConfig.from_namespace(recipe))
    layout = kind.layout(vqvae, num_classes)
    batch, generator = recipe.train_batch_size, torch.Generator().manual_seed(seed)
    grids = [synthetic_token_grids(layout, batch, generator) for _ in range(POOL)]
    batches = [{key: value.to(device) for key, value in grid.items()} for grid in grids]
    lr, weight_decay = recipe.learning_rate, recipe.weight_decay

    def optimizer(model):
        return torch.optim.AdamW(weight_decay_groups(model, weight_decay), lr=lr, betas=PRIOR_ADAM_BETAS)

    def loss(model, batch):
        input_ids, labels = kind.inputs(batch, layout, recipe.class_dropout)  # after build: the scheduler exists
        return model(input_ids=input_ids, labels=labels).loss

    prefix = layout.prefix_length if recipe.prior_type == "ar" else layout.denoiser_prefix_length
    description = {key: getattr(recipe, key) for key in ("n_layer", "n_head", "n_embd")}
    description |= {"grid": [layout.grid_height, layout.grid_width], "num_classes": num_classes}
    description |= {"sequence_length": prefix + layout.num_tokens, "global_batch_size": batch}
    return Workload(lambda: kind.build_model(layout), optimizer, loss, recipe, batches, description, kind.pipeline)


def build_workloads(args, device, names: tuple[str, ...]) -> tuple[dict[str, Workload], VQVAEModel]:
    """The named workloads (`tokenizer`, `ar`, `diffusion`, `ar_large`, `diffusion_large`) and the tokenizer whose
    grid and codebook the priors model."""
    tokenizer, prior = (SMOKE_TOKENIZER, SMOKE_PRIOR) if args.smoke else ([], [])
    shape = [str(value) for value in args.large_prior]
    large = [*prior, "--n_layer", shape[0], "--n_head", shape[1], "--n_embd", shape[2]]
    recipes = {"tokenizer": recipe_arguments(args.tokenizer_recipe, parse_tokenizer_arguments, tokenizer)}
    for kind in ("ar", "diffusion"):
        path = getattr(args, f"{kind}_recipe")
        recipes[kind] = recipe_arguments(path, parse_prior_arguments, [*IN_PROCESS, *prior])
        recipes[f"{kind}_large"] = recipe_arguments(path, parse_prior_arguments, [*IN_PROCESS, *large])
    vqvae = build_tokenizer(recipes["tokenizer"])
    built = {}
    for name in names:
        if name == "tokenizer":
            built[name] = tokenizer_workload(recipes[name], device, args.seed)
        else:
            built[name] = prior_workload(recipes[name], vqvae, args.num_classes, device, args.seed)
    return built, vqvae


# training


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    torch.cuda.reset_peak_memory_stats(device) if device.type == "cuda" else reset_peak_rss()


def peak_memory_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mib()


def shard(batch: dict, accelerator: Accelerator) -> dict:
    """This process's rows of a global batch."""
    size = next(iter(batch.values())).shape[0] // accelerator.num_processes
    return {key: value[accelerator.process_index * size :][:size] for key, value in batch.items()}


def summarize(seconds: list[float], losses: list[float], workload: Workload, args) -> dict:
    row = {"steps": len(seconds), "warmup_s": sum(seconds[: args.warmup_steps])}
    timed = seconds[args.warmup_steps :]
    if timed:
        step_s = sum(timed) / len(timed)
        row |= {"step_ms": 1000 * step_s, "images_per_s": workload.batch_size / step_s}
        if "sequence_length" in workload.description:
            row["tokens_per_s"] = row["images_per_s"] * workload.description["sequence_length"]
    row |= {"first_loss": losses[0], "final_loss": sum(losses[-10:]) / len(losses[-10:])}
    if len(seconds) < args.train_steps:
        row["stopped"] = f"--max_seconds {args.max_seconds:g} spent after {len(seconds)} steps"
    return row


def train_run(accelerator: Accelerator, workload: Workload, args, compiled: bool, budget: Budget) -> dict:
    """`--train_steps` steps from fresh seeded weights: throughput, peak memory, losses (averaged over processes)."""
    device, processes = accelerator.device, accelerator.num_processes
    set_seed(args.seed)
    model = workload.build()
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = workload.optimizer(model)
    recipe = workload.recipe
    name, warmup, total = recipe.lr_scheduler, recipe.lr_warmup_steps, recipe.max_train_steps
    # a prepared scheduler steps once per process, hence the scripts' scaling
    lr_scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup * processes,
                                 num_training_steps=total * processes)  # fmt: skip
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    if compiled:
        model = torch.compile(model, backend=args.compile_backend, mode=args.compile_mode)
    model.train()
    max_grad_norm = recipe.max_grad_norm
    synchronize(device)
    reset_peak_memory(device)
    seconds, losses = [], []
    for step in range(args.train_steps):
        if budget.left() <= 0:
            break
        batch = shard(workload.batches[step % len(workload.batches)], accelerator)
        start = time.perf_counter()
        loss = workload.loss(model, batch)
        losses.append(backward_and_step(accelerator, loss, model, optimizer, lr_scheduler, max_grad_norm, step + 1))
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    if not seconds:
        return budget.skip()
    row = summarize(seconds, losses, workload, args)
    return row | {"peak_memory_mib": peak_memory_mib(device), "parameters": parameters}


def release(accelerator: Accelerator) -> None:
    """Drop every prepared object, compiled graph and cached block: the next run's peak memory is its own."""
    accelerator.free_memory()
    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def guarded(what: str, run: Callable[[], dict]) -> dict:
    """`run()`, a failure recorded as `{"error": ...}` so that the other sections still run; progress printed."""
    start = time.perf_counter()
    try:
        row = run()
    except Exception as error:  # an out-of-memory or a compile failure is a finding, not a reason to stop
        traceback.print_exc()
        row = {"error": f"{type(error).__name__}: {error}"[:500]}
    shown = {key: f"{value:.4g}" if isinstance(value, float) else value for key, value in row.items()}
    log(f"{what} ({time.perf_counter() - start:.1f}s): {shown}")
    return row


# sampling


def ar_compiled_samplers(vqvae, prior, args) -> dict:
    """The static-cache samplers this version of `VQGenPipeline` has: name -> (pipeline, call kwargs) maker, or a
    skip record naming what is missing."""
    static = "static_cache" in inspect.signature(VQGenPipeline.__call__).parameters
    if not static:
        reason = {"skipped": "not available in this version: VQGenPipeline.__call__ has no `static_cache`"}
        compiled = torch.compile(prior, backend=args.compile_backend, mode=args.compile_mode)
        return {"ar_static_cache": reason, "ar_static_cache_compile": reason,
                "ar_kv_cache_compile": lambda: (VQGenPipeline(vqvae=vqvae, prior=compiled), {})}  # fmt: skip

    def static_compiled():
        pipeline = VQGenPipeline(vqvae=vqvae, prior=prior)
        if hasattr(pipeline, "compile_prior"):
            pipeline.compile_prior(backend=args.compile_backend, mode=args.compile_mode)
        else:  # a static cache without the pipeline's own compile: the prior compiled beneath it
            compiled = torch.compile(prior, backend=args.compile_backend, mode=args.compile_mode)
            pipeline = VQGenPipeline(vqvae=vqvae, prior=compiled)
        return pipeline, {"static_cache": True}

    return {"ar_static_cache_compile": static_compiled}


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
    if isinstance(make, dict):
        return make
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
    """Eager: the AR KV cache (and static cache) and diffusion at each step count; compiled: `ar_compiled_samplers`.
    The models are fresh (speed does not depend on the weights), in eval mode, in the training precision's dtype."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision, torch.float32)
    vqvae = vqvae.to(device).eval()
    set_seed(args.seed)
    ar, diffusion = (built[name].build().to(device, dtype).eval() for name in ("ar", "diffusion"))
    ar_pipeline, diffusion_pipeline = built["ar"].pipeline, built["diffusion"].pipeline
    if compiled:
        samplers = ar_compiled_samplers(vqvae, ar, args)
        return {name: run_sampler(name, make, args, device, budget, COMPILE_RESERVE_S * (not args.smoke))
                for name, make in samplers.items()}  # fmt: skip
    samplers = {"ar_kv_cache": lambda: (ar_pipeline(vqvae, ar), {})}
    if "static_cache" in inspect.signature(VQGenPipeline.__call__).parameters:
        samplers["ar_static_cache"] = lambda: (ar_pipeline(vqvae, ar), {"static_cache": True})
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


# 2 processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_workers(args, budget: Budget) -> dict:
    """This script's `--worker` mode under `accelerate launch` with 2 processes: what its main process wrote."""
    seconds = max(budget.left(), 1.0)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "worker.json"
        launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                  args.mixed_precision, "--dynamo_backend", "no", "--main_process_port", str(free_port())]  # fmt: skip
        forwarded = ["--worker", "--worker_output", str(output), "--max_seconds", f"{seconds:.0f}"]
        names = ("seed", "train_steps", "warmup_steps", "mixed_precision", "num_classes", "tokenizer_recipe")
        for name in (*names, "ar_recipe", "diffusion_recipe"):
            forwarded += [f"--{name}", str(getattr(args, name))]
        forwarded += ["--smoke", "--results_file", str(Path(folder) / "unused.json")] if args.smoke else []
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, relative(__file__), *forwarded]
        log("$ accelerate launch " + " ".join(command[3:]))
        # without CUDA (--smoke_multiprocess): gloo on CPU, the same code path
        env = os.environ | ({} if torch.cuda.is_available() else {"ACCELERATE_USE_CPU": "1"})
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        try:
            code = process.wait(timeout=seconds + 60)  # the workers stop at the deadline; this bounds start-up
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the launcher and the workers it started
            process.wait()
            return {"skipped": f"the 2-process run outlived --max_seconds {args.max_seconds:g}"}
        if code != 0 or not output.is_file():
            return {"error": f"accelerate launch exited with status {code} (its output is above)"}
        return json.loads(output.read_text())


def compare_processes(one: dict, two: dict) -> dict:
    """2-process vs 1-process figures of one prior (`MULTI_GPU_RULE`)."""
    if "images_per_s" not in one or "images_per_s" not in two:
        return {"skipped": "no steady-state figures to compare", "one_process": one, "two_processes": two}
    difference = abs(two["final_loss"] - one["final_loss"])
    tolerance = max(LOSS_TOLERANCE[0], LOSS_TOLERANCE[1] * abs(one["final_loss"]))
    return {
        "one_process": {key: one[key] for key in ("steps", "images_per_s", "final_loss", "peak_memory_mib")},
        "two_processes": {key: two[key] for key in ("steps", "images_per_s", "final_loss", "peak_memory_mib")},
        "throughput_ratio": two["images_per_s"] / one["images_per_s"],
        "loss_difference": difference,
        "loss_equal": difference <= tolerance and one["steps"] == two["steps"],
    }


def multi_gpu_section(args, training: dict, budget: Budget) -> dict:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2 and not (args.smoke_multiprocess and count == 0):
        return {"skipped": f"{count} CUDA device(s): needs 2"}
    if budget.skip(0 if args.smoke else MULTI_GPU_RESERVE_S):
        return budget.skip(MULTI_GPU_RESERVE_S)
    worker = launch_workers(args, budget)
    if "rows" not in worker:
        return worker
    section = {"rule": MULTI_GPU_RULE, "num_processes": worker["num_processes"]}
    for name, two in worker["rows"].items():
        section[name] = compare_processes(training[name].get("eager", {}), two) if "error" not in two else two
    return section


def worker(args) -> None:
    """One `accelerate launch` process: the AR and diffusion prior steps; the main process writes them."""
    budget, accelerator = Budget(args.max_seconds), Accelerator(mixed_precision=args.mixed_precision)
    built, _ = build_workloads(args, accelerator.device, ("ar", "diffusion"))
    rows = {}
    for name, workload in built.items():
        what = f"[process {accelerator.process_index}] training {name}"
        rows[name] = guarded(what, lambda workload=workload: train_run(accelerator, workload, args, False, budget))
        release(accelerator)
    if accelerator.is_main_process:
        Path(args.worker_output).write_text(json.dumps({"num_processes": accelerator.num_processes, "rows": rows}))
    accelerator.wait_for_everyone()
    accelerator.end_training()


# report


def environment(args, device: torch.device) -> dict:
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_properties(0) if cuda else None
    return {
        "device": device.type,
        "num_gpus": torch.cuda.device_count() if cuda else 0,
        "gpu_name": gpu.name if cuda else None,
        "gpu_memory_gib": gpu.total_memory / 2**30 if cuda else None,
        "compute_capability": f"{gpu.major}.{gpu.minor}" if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "mixed_precision": args.mixed_precision,
        "accelerate": accelerate.__version__,
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
        "peak_memory": "torch.cuda.max_memory_allocated, per run" if cuda else "the process's RSS high-water mark",
    }


def _cells(row: dict, keys: tuple[str, ...]) -> str:
    values = [row.get(key) for key in keys]
    return " | ".join(f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v) for v in values)


def _reason(row: dict) -> str:
    return row.get("skipped") or row.get("error") or ""


def markdown(report: dict) -> str:
    env, lines = report["environment"], []
    device = f"{env['gpu_name'] or env['device']} x{max(env['num_gpus'], 1)}"
    versions = f"torch {env['torch']}, CUDA {env['cuda']}, {env['mixed_precision']}, {report['elapsed_s']:.0f}s"
    lines.append(f"## accelerator check: {device}, {versions}\n")
    lines += ["| model | variant | steps | images/s | tokens/s | step ms | peak MiB | warm-up s | loss first, last |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = ("steps", "images_per_s", "tokens_per_s", "step_ms", "peak_memory_mib", "warmup_s")
    for name, variants in report["training"].items():
        for variant, row in variants.items():
            if "images_per_s" in row:
                loss = f"{row['first_loss']:.3f}, {row['final_loss']:.3f}"
                lines.append(f"| {name} | {variant} | {_cells(row, keys)} | {loss} |")
            else:
                lines.append(f"| {name} | {variant} | {row.get('steps', '')} | {_reason(row) or row.get('stopped')} |")
    lines += [f"\nSampling ({report['sampling']['dtype']} weights, token ids only):\n",
              "| sampler | batch | latency s | images/s | peak MiB | warm-up call s |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, sampler in report["sampling"].items():
        if isinstance(sampler, dict) and "batch_sizes" not in sampler:
            lines.append(f"| {name} | | {_reason(sampler)} |")
        for batch, row in sampler.get("batch_sizes", {}).items() if isinstance(sampler, dict) else ():
            keys = ("latency_s", "images_per_s", "peak_memory_mib", "warmup_call_s")
            lines.append(f"| {name} | {batch} | {_cells(row, keys) if 'latency_s' in row else _reason(row)} |")
    for ar, steps in report["crossover_batch_size"].items():
        lines.append(
            f"\nCrossover batch size, {ar} vs diffusion: " + ", ".join(f"{k} steps: {v}" for k, v in steps.items())
        )
    multi = report["multi_gpu"]
    lines.append(f"\n2 processes: {_reason(multi) or multi['rule']}")
    for name in ("ar", "diffusion") if "rule" in multi else ():
        row = multi[name]
        if "throughput_ratio" in row:
            lines.append(f"- {name}: throughput x{row['throughput_ratio']:.2f}, loss difference "
                         f"{row['loss_difference']:.4f}, equal: {row['loss_equal']}")  # fmt: skip
        else:
            lines.append(f"- {name}: {_reason(row)}")
    return "\n".join(lines)


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
    parser.add_argument("--repeats", type=int, default=3, help="Timed sampling calls (the best one counts).")
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
    report = {"benchmark": "accelerator_check", "environment": environment(args, device), "machine": machine()}
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
