"""One output folder, one run: the lock a training run holds on its --output_dir."""

import json
import subprocess
import sys
import textwrap

import pytest

from hf_vqgen.training.run_lock import LOCK_FILE, OutputFolderLock, hold_output_dir


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path):
    with OutputFolderLock(tmp_path / "run"):
        with pytest.raises(ValueError, match="in use by another run \\(process"):
            OutputFolderLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run" / LOCK_FILE).exists()  # released at the end


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    record = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": 0, "command": ["train"]}
    (folder / LOCK_FILE).write_text(json.dumps(record))
    with OutputFolderLock(folder) as lock:
        assert lock.holder()["pid"] != record["pid"]
    assert "no longer running" in caplog.text


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with hold_output_dir(True, tmp_path / "new"):
            raise RuntimeError("failed before writing anything")
    assert not (tmp_path / "new").exists()


def test_two_processes_cannot_hold_one_folder(tmp_path):
    """A second process started while the first holds the folder is refused at once, naming the first."""
    script = textwrap.dedent(f"""
        import sys, time
        from hf_vqgen.training.run_lock import OutputFolderLock
        with OutputFolderLock({str(tmp_path / "run")!r}):
            print("held", flush=True)
            time.sleep(30)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "held"
        second = subprocess.run(
            [sys.executable, "-c", script.replace("time.sleep(30)", "pass")], capture_output=True, text=True
        )
        assert second.returncode != 0 and f"process {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
