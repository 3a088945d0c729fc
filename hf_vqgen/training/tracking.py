"""Experiment tracking set-up shared by the training scripts."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from accelerate import Accelerator
from accelerate.tracking import GeneralTracker


class JSONLinesTracker(GeneralTracker):
    """Appends every `accelerator.log(values, step)` as one JSON line to `logging_dir/metrics.jsonl` (main process
    only). Always on, whatever `--report_to` says: a plain-text record of the run that survives a kill (each line
    is flushed) and that tests and scripts can read without TensorBoard."""

    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.jsonl"

    @property
    def tracker(self):
        return self.path

    def start(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, values: dict, step: int | None = None, **kwargs):
        record = {"step": step} | {key: float(value) for key, value in values.items()}
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")


def read_metrics(logging_dir: str | os.PathLike) -> list[dict]:
    """The records a `JSONLinesTracker` wrote, in order."""
    path = Path(logging_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def init_trackers(accelerator: Accelerator, project_name: str, args: argparse.Namespace) -> None:
    """Start the `--report_to` trackers with the run's arguments as hyperparameters (TensorBoard accepts scalars
    and strings only, so lists become strings and unset options are left out)."""
    config = {k: str(v) if isinstance(v, (list, tuple)) else v for k, v in vars(args).items() if v is not None}
    accelerator.init_trackers(project_name, config=config)
