"""Exporting a trained model into its output folder as one atomic step.

The output folder is re-used across runs (resume with `--resume_from_checkpoint latest`, or a second run with the
same `--output_dir`), so a run killed while saving must never leave new weights next to an old card, or a new
tokenizer next to a prior trained on another tokenizer's tokens. The export is written to a sibling folder, the
folder's other contents (checkpoints, logs, cached tokens) are hard-linked into it, and the two folders are swapped
with one `renameat2(RENAME_EXCHANGE)` on Linux: a reader sees the complete old folder or the complete new one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path


logger = logging.getLogger(__name__)

# what a folder holds about its run rather than its model: carried over by an export, everything else is replaced
RUN_STATE = ("logs", "tokens", "validation", ".hf_vqgen_run.lock", "run_config.json")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# the file system or kernel cannot exchange these two paths: fall back to two renames
_CANNOT_EXCHANGE = {errno.EBUSY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux `renameat2`); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    result = libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        if code in _CANNOT_EXCHANGE:
            return False
        raise OSError(code, f"Swapping {first} and {second}: {os.strerror(code)}")
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard links (no data copied) where the file system allows them, else copies."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_file, symlinks=True)
    else:
        _link_file(source, target)


def _link_file(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def is_run_state(name: str) -> bool:
    """Checkpoints, logs, cached tokens, validation images and the run lock (see `RUN_STATE`)."""
    return name in RUN_STATE or name.startswith("checkpoint-")


def recover_interrupted_export(output_dir: str | os.PathLike) -> None:
    """Undo what an export killed half-way left beside `output_dir`: the previous folder moved aside by the
    non-atomic fallback is moved back (when `output_dir` is gone), staging folders are removed. Call it before
    anything looks into `output_dir` (resuming, re-using cached tokens)."""
    output_dir = _target(output_dir)
    for leftover in sorted(output_dir.parent.glob(f".{output_dir.name}.export-*")):
        if leftover.name.endswith("-previous") and not output_dir.exists():
            os.replace(leftover, output_dir)  # killed between the two moves of the fallback: the old folder is back
        elif leftover.is_symlink():
            leftover.unlink()
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _target(output_dir: str | os.PathLike) -> Path:
    """The folder itself: a symlinked `--output_dir` is exported into the folder it points to."""
    path = Path(output_dir).absolute()
    return path.resolve() if path.is_symlink() else path


def export_atomically(output_dir: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(folder)` on an empty sibling folder, carry over the run state `output_dir` holds (checkpoints,
    logs, tokens: hard links; nothing of an earlier export, so a diffusion pipeline's `denoiser/` never survives an
    AR export into the same folder), then swap it into place. A failure or a kill at any moment leaves
    `output_dir` as it was before, or as it is after, on Linux; elsewhere the old folder is moved aside and the new
    one in (`recover_interrupted_export` undoes a kill between the two). A mount point cannot be swapped: it is
    written in place, with a warning."""
    recover_interrupted_export(output_dir)
    output_dir = _target(output_dir)
    parent, name = output_dir.parent, output_dir.name
    parent.mkdir(parents=True, exist_ok=True)
    if output_dir.is_dir() and (os.path.ismount(output_dir) or output_dir.stat().st_dev != parent.stat().st_dev):
        logger.warning("%s is a mount point: exporting in place, not atomically.", output_dir)
        write(output_dir)
        return output_dir
    staging = parent / f".{name}.export-{os.getpid()}"
    staging.mkdir()
    try:
        write(staging)
        if output_dir.is_dir():
            for entry in output_dir.iterdir():  # run state only: no file of an earlier export survives
                if is_run_state(entry.name) and not (staging / entry.name).exists():
                    _link_or_copy(entry, staging / entry.name)
        if output_dir.is_dir() and _exchange(staging, output_dir):
            shutil.rmtree(staging, ignore_errors=True)  # now the old folder; a leftover is removed next time
            return output_dir
        # no atomic exchange here (or nothing to replace): move the old folder aside, then the new one in
        previous = parent / f".{name}.export-{os.getpid()}-previous"
        if output_dir.is_dir():
            os.replace(output_dir, previous)
        os.replace(staging, output_dir)
        shutil.rmtree(previous, ignore_errors=True)
        return output_dir
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
