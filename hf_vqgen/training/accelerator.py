"""The `Accelerator` every training script starts from."""

from __future__ import annotations

import argparse

from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration


def build_accelerator(args: argparse.Namespace) -> Accelerator:
    """Mixed precision, gradient accumulation, trackers and the project folder from the shared arguments; a seedable
    sampler (seeded by `--seed`), so that a resumed run sees the batches in the same order as an uninterrupted one."""
    return Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(args.output_dir, logging_dir=f"{args.output_dir}/{args.logging_dir}"),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
