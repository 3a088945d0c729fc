"""What a run was started with, kept in its output folder (`run_config.json`), so that a resume notices changes.

A resume continues the same run: settings that change the model's shape or meaning, or the order in which it sees the
data, are refused (each named, with the saved and the new value); settings that only change the optimisation from
here on (learning rate, schedule length, checkpoint cadence, ...) proceed with a warning naming each; settings that
only say where things go are not compared.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ..utils import portable_path


logger = logging.getLogger(__name__)
RUN_CONFIG_FILE = "run_config.json"
# may change on a resume (warned): they change how training goes on, not what is being trained
OPTIMISATION = {
    "learning_rate", "lr_scheduler", "lr_warmup_steps", "max_train_steps", "max_train_minutes", "max_grad_norm",
    "weight_decay", "adam_beta1", "adam_beta2", "adam_weight_decay", "disc_learning_rate", "disc_start",
    "checkpointing_steps", "checkpoints_total_limit", "validation_steps", "num_validation_images", "eval_batch_size",
    "max_eval_samples", "mixed_precision", "compile", "compile_backend", "dataloader_num_workers",
}  # fmt: skip
# not compared: where things go, and how this invocation was asked to resume
LOCAL = {"output_dir", "logging_dir", "report_to", "push_to_hub", "hub_model_id", "resume_from_checkpoint"}


def _recorded(args) -> dict:
    return {
        key: portable_path(value) if isinstance(value, str | os.PathLike) and os.path.isabs(str(value)) else value
        for key, value in sorted(vars(args).items())
        if key not in LOCAL
    }


def save_run_config(output_dir: str | os.PathLike, args) -> None:
    path = Path(output_dir) / RUN_CONFIG_FILE
    temporary = path.with_suffix(".partial")
    temporary.write_text(json.dumps(_recorded(args), indent=2, default=str) + "\n")
    os.replace(temporary, path)


def check_resumed_settings(output_dir: str | os.PathLike, args) -> None:
    """Compare `args` with the run configuration saved in `output_dir`: a `ValueError` naming every setting that
    changes the model or the data order, a warning naming every optimisation setting that changed. A folder without a
    saved configuration (a run of an older version) resumes with a warning that nothing could be compared."""
    path = Path(output_dir) / RUN_CONFIG_FILE
    if not path.is_file():
        logger.warning("%s has no %s: the resumed settings cannot be compared with the run's.", output_dir, path.name)
        return
    saved = json.loads(path.read_text())
    new = json.loads(json.dumps(_recorded(args), default=str))  # the same JSON round trip as the saved values
    changed = {
        key: (saved.get(key), new.get(key)) for key in saved.keys() | new.keys() if saved.get(key) != new.get(key)
    }
    refused = {key: values for key, values in changed.items() if key not in OPTIMISATION}
    if refused:
        named = "; ".join(
            f"--{key}: {old!r} in the run, {value!r} now" for key, (old, value) in sorted(refused.items())
        )
        raise ValueError(
            f"Resuming {output_dir} with settings that change the model or its data order: {named}. Resume with the "
            "run's settings, or start a new run (another --output_dir, or --init_from a finished pipeline)."
        )
    for key, (old, value) in sorted(changed.items()):
        logger.warning("Resuming with --%s %r (the run so far used %r).", key, value, old)


def check_fresh_start(output_dir: str | os.PathLike, args) -> None:
    """A run that starts from scratch in a folder holding an earlier run's checkpoints is refused: its own checkpoints
    would sit beside the other run's, and a later `--resume_from_checkpoint latest` could pick up either."""
    from .checkpointing import list_checkpoints

    checkpoints = list_checkpoints(output_dir)
    if checkpoints:
        names = ", ".join(path.name for path in checkpoints)
        raise ValueError(
            f"--output_dir {output_dir} holds the checkpoints of an earlier run ({names}). Continue that run with "
            "--resume_from_checkpoint latest, or start this one in another --output_dir (or delete them)."
        )


def start_own_log(output_dir: str | os.PathLike, args) -> None:
    """A run starting from scratch writes its own `metrics.jsonl`: an earlier run's (of the model this run's export
    replaces) is kept beside it as `metrics.<its last change>.jsonl`, never appended to."""
    log = Path(output_dir) / getattr(args, "logging_dir", "logs") / "metrics.jsonl"
    if log.is_file():
        kept = log.with_name(f"metrics.{time.strftime('%Y%m%dT%H%M%S', time.gmtime(log.stat().st_mtime))}.jsonl")
        os.replace(log, kept)
        logger.warning("%s holds an earlier run's log: kept as %s; this run writes its own.", log.parent, kept.name)


def remember_run_settings(args, is_main_process: bool) -> None:
    """Before a run (re)starts: a resume is checked against the saved settings, a fresh start against an earlier
    run's checkpoints (every process raises alike); then the main process starts its log and saves its settings."""
    from .checkpointing import resolve_resume_checkpoint

    resuming = resolve_resume_checkpoint(args.output_dir, args.resume_from_checkpoint) is not None
    if resuming:
        check_resumed_settings(args.output_dir, args)
    elif args.resume_from_checkpoint is None:  # "latest" with nothing to resume may find the run's own leftovers
        check_fresh_start(args.output_dir, args)
    if is_main_process:
        if not resuming:
            start_own_log(args.output_dir, args)
        save_run_config(args.output_dir, args)
