"""Checkpoint folders `output_dir/checkpoint-<step>` written by `Accelerator.save_state`, atomically."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator


logger = logging.getLogger(__name__)
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders in `output_dir`, oldest first (temporary folders of interrupted saves excluded)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir() if (m := _CHECKPOINT.match(path.name))]
    return [path for _, path in sorted(found)]


def checkpoint_step(path: str | os.PathLike) -> int:
    match = _CHECKPOINT.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a `checkpoint-<step>` folder.")
    return int(match.group(1))


def resolve_resume_checkpoint(output_dir: str | os.PathLike, resume_from_checkpoint: str | None) -> Path | None:
    """`"latest"` -> the newest checkpoint in `output_dir` (None when there is none yet); a path -> that path."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        if not checkpoints:
            logger.info("No checkpoint in %s: starting a new run.", output_dir)
            return None
        return checkpoints[-1]
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        raise ValueError(f"`resume_from_checkpoint` {resume_from_checkpoint!r} is not a checkpoint folder.")
    return path


def save_checkpoint(
    accelerator: Accelerator, output_dir: str | os.PathLike, step: int, total_limit: int | None
) -> Path:
    """Save the training state as `checkpoint-<step>`: written to a temporary folder, then renamed, so that a run
    killed mid-save never leaves a half-written checkpoint. Keeps at most `total_limit` checkpoints."""
    final = Path(output_dir) / f"checkpoint-{step}"
    partial = Path(output_dir) / f".partial-checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))  # every rank takes part; only the main process writes the model files
    except (
        OSError,
        RuntimeError,
    ) as error:  # a full disk surfaces as torch's "inline_container.cc ... unexpected pos"
        shutil.rmtree(partial, ignore_errors=True)
        free = shutil.disk_usage(Path(output_dir)).free / 2**20
        raise OSError(
            f"Writing checkpoint-{step} into {output_dir} failed ({str(error).splitlines()[0][:200]}); "
            f"{free:.0f} MiB free there. Is the disk full? The earlier checkpoints are intact: free space (or lower "
            "--checkpoints_total_limit) and resume with --resume_from_checkpoint latest."
        ) from error
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        if total_limit is not None:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    accelerator: Accelerator, output_dir: str | os.PathLike, resume_from_checkpoint: str | None
) -> int:
    """Restore the state saved by `save_checkpoint` when asked to (`"latest"` or a path); returns its step (0 if
    nothing was restored). With `"latest"`, a checkpoint that fails to load (corrupt or incomplete files) is
    skipped with a warning in favour of the one before it."""
    path = resolve_resume_checkpoint(output_dir, resume_from_checkpoint)
    if path is None:
        return 0
    candidates = [path]
    if resume_from_checkpoint == "latest":
        candidates = list_checkpoints(output_dir)[::-1]
    for candidate in candidates:
        try:
            accelerator.load_state(str(candidate))
        except Exception as error:  # noqa: BLE001 - any failure to read a checkpoint means: try the previous one
            if resume_from_checkpoint != "latest":
                raise ValueError(f"Cannot load the checkpoint {candidate}: {error}") from error
            logger.warning("Skipping the unreadable checkpoint %s (%s: %s).", candidate, type(error).__name__, error)
            continue
        logger.info("Resumed from %s at step %d.", candidate, checkpoint_step(candidate))
        return checkpoint_step(candidate)
    raise ValueError(f"No checkpoint in {output_dir} could be loaded; remove them or start without resuming.")
