"""The `Accelerator` every training script starts from."""

from __future__ import annotations

import argparse
import os

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

from .tracking import JSONLinesTracker


def build_accelerator(args: argparse.Namespace) -> Accelerator:
    """Mixed precision, gradient accumulation, `--compile`, trackers and the project folder from the shared arguments; a seedable
    sampler (seeded by `--seed`), so that a resumed run sees the batches in the same order as an uninterrupted one.
    Besides the `--report_to` trackers, every run logs to `output_dir/logging_dir/metrics.jsonl`."""
    logging_dir = f"{args.output_dir}/{args.logging_dir}"
    trackers = [JSONLinesTracker("run", logging_dir)]
    if args.report_to != "none":
        trackers += args.report_to.split(",")
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=trackers,
        project_config=ProjectConfiguration(args.output_dir, logging_dir=logging_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        # `prepare` compiles the model; `unwrap_model` hands back the plain module for saving
        dynamo_backend=args.compile_backend.upper() if getattr(args, "compile", False) else None,
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:  # each process would train alone and all would write
        raise ValueError(
            f"{launched} processes were launched but each runs alone (no process group). On a machine without a GPU, "
            "launch with ACCELERATE_USE_CPU=1 (see examples/configs/cpu_2proc.yaml)."
        )
    return accelerator


def loader_generator(args: argparse.Namespace) -> torch.Generator:
    """A generator of its own for the training `DataLoader`: starting an iterator draws a seed from the global RNG
    when the loader has none, and a resumed run starts its iterator at a different point of the RNG stream than
    the uninterrupted run did, which would shift every later dropout mask and corruption draw."""
    return torch.Generator().manual_seed(args.seed)
