"""One output folder, one run: a lock file naming the run that holds `--output_dir`.

Two trainings started with the same `--output_dir` would replace each other's checkpoints and model, and a resume
would pick up the other run's state. The first run creates `.hf_vqgen_run.lock` (atomically, `O_EXCL`) with its
process id, host and command; a second run is refused at once with that name. A lock left by a process that is no
longer running on this host (killed, crashed) is detected and taken over with a warning. The lock is released when
the run ends, and a run that fails before writing anything removes the folder it created.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path


logger = logging.getLogger(__name__)
LOCK_FILE = ".hf_vqgen_run.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class OutputFolderLock:
    """Hold `folder` for this run: `acquire()` before anything is written there, `release()` at the end (or use it
    as a context manager). `created_folder` says whether this run made the folder (then a run that fails with the
    folder still empty removes it)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.created_folder = False
        self.held = False

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def acquire(self) -> OutputFolderLock:
        self.created_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": sys.argv}
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder and (holder.get("host") != socket.gethostname() or _alive(int(holder.get("pid", -1)))):
                    command = " ".join(holder.get("command") or [])
                    raise ValueError(
                        f"--output_dir {self.folder} is in use by another run (process {holder.get('pid')} on "
                        f"{holder.get('host')}, started {time.ctime(holder.get('started', 0))}: {command}). "
                        f"Use another --output_dir, or wait for that run; if it is gone, delete {self.path}."
                    ) from None
                logger.warning("Taking over %s, left by process %s, which is no longer running.", self.path,
                               (holder or {}).get("pid"))  # fmt: skip
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as file:
                json.dump(record, file)
            self.held = True
            return self
        raise ValueError(f"Could not take the lock {self.path}: another run took it at the same moment.")

    def release(self, failed: bool = False) -> None:
        if not self.held:
            return
        holder = self.holder()
        if holder and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False
        if failed and self.created_folder and self.folder.is_dir() and not any(self.folder.iterdir()):
            shutil.rmtree(self.folder, ignore_errors=True)  # nothing written: leave no empty folder behind

    def __enter__(self) -> OutputFolderLock:
        return self.acquire()

    def __exit__(self, kind, value, traceback) -> None:
        self.release(failed=kind is not None)


class hold_output_dir:  # noqa: N801 - used as a context manager, like `contextlib.suppress`
    """`OutputFolderLock` taken by the main process of a (possibly multi-process) run; a folder that cannot be
    created or written is a `ValueError` naming it."""

    def __init__(self, is_main_process: bool, output_dir: str | os.PathLike):
        self.lock = OutputFolderLock(output_dir) if is_main_process else None

    def __enter__(self):
        if self.lock is not None:
            try:
                self.lock.acquire()
            except OSError as error:
                raise ValueError(f"--output_dir {self.lock.folder} is not writable ({error.strerror}).") from None
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self.lock is not None:
            self.lock.release(failed=kind is not None)
