"""Experiment tracking set-up shared by the training scripts."""

from __future__ import annotations

import argparse

from accelerate import Accelerator


def init_trackers(accelerator: Accelerator, project_name: str, args: argparse.Namespace) -> None:
    """Start the `--report_to` trackers with the run's arguments as hyperparameters (TensorBoard accepts scalars
    and strings only, so lists become strings and unset options are left out)."""
    config = {k: str(v) if isinstance(v, (list, tuple)) else v for k, v in vars(args).items() if v is not None}
    accelerator.init_trackers(project_name, config=config)
