"""The accelerator check's models and training runs: the emoji recipes' tokenizer and priors built in-process from
their `.args` files by the training scripts' own parsers and builders (`hf_vqgen.training.script_arguments`), trained
for a few steps on synthetic data with the scripts' own step (`backward_and_step`) under `Accelerator`. Shared by the
check's single-process sections and its 2-process workers (`accelerator_two_processes.py`)."""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from common import peak_rss_mib, relative, reset_peak_rss
from diffusers.optimization import get_scheduler

from hf_vqgen import VQVAEModel
from hf_vqgen.data.registry import DATASETS
from hf_vqgen.training import VQGANLoss, VQGANLossConfig
from hf_vqgen.training.loop import backward_and_step
from hf_vqgen.training.prior_batches import PRIOR_ADAM_BETAS, weight_decay_groups
from hf_vqgen.training.prior_kinds import PRIOR_KINDS, PriorConfig
from hf_vqgen.training.script_arguments import build_tokenizer, parse_prior_arguments, parse_tokenizer_arguments


# --smoke: the recipes' models shrunk to seconds on CPU (16x16 RGB -> 4x4 grids of 16 codes; 1-layer priors)
SMOKE_TOKENIZER = ("--resolution 16 --block_out_channels 4 8 8 --norm_num_groups 4 --latent_channels 8 "
                   "--vq_embed_dim 4 --num_vq_embeddings 16 --train_batch_size 4").split()  # fmt: skip
SMOKE_PRIOR = "--n_layer 1 --n_head 2 --n_embd 16 --train_batch_size 4".split()
IN_PROCESS = ["--vqvae_name_or_path", "(built in-process)"]  # train_prior.py requires one; the check never reads it
POOL = 4  # distinct synthetic batches, cycled
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
    """Classes of the recipe's labels from its registered dataset (emoji: category x style = 30): no data needed."""
    if recipe.unconditional:
        return 0
    if recipe.dataset_name not in DATASETS:
        raise SystemExit(f"{relative(recipe.recipe)} trains on an unregistered dataset: give --num_classes.")
    entry = DATASETS[recipe.dataset_name]
    return math.prod(entry.num_label_classes(column) for column in recipe.label_columns or ["label"])


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

    description = {key: getattr(recipe, key) for key in ("n_layer", "n_head", "n_embd")}
    description |= {"grid": [layout.grid_height, layout.grid_width], "num_classes": num_classes}
    description |= {"sequence_length": kind.input_length(layout), "global_batch_size": batch}
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
