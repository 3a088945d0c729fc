"""Committed results and models name what they scored by repo-relative paths or repo ids, never by a path of the
machine they were made on."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from hf_vqgen.utils import portable_path


ROOT = Path(__file__).resolve().parents[1]
ABSOLUTE = re.compile(r"^(/[^/\s]+/|[A-Za-z]:\\|~/)")


def committed_json_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "*.json"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): check what is there
        listed = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.json") if ".venv" not in p.parts]
    return [ROOT / name for name in listed]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_there_are_committed_json_files_to_check():
    assert any(path.parent.name == "results" for path in committed_json_files())


@pytest.mark.parametrize("path", committed_json_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_json_holds_no_absolute_path(path):
    absolute = [text for text in strings(json.loads(path.read_text())) if ABSOLUTE.match(text)]
    assert not absolute, f"{path.relative_to(ROOT)} holds absolute paths: {absolute[:3]}"


def test_portable_path(tmp_path, monkeypatch):
    (tmp_path / "runs" / "ar").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "runs" / "ar") == "runs/ar"
    assert portable_path("runs/ar") == "runs/ar"
    assert portable_path("user/fashion-mnist-ar") == "user/fashion-mnist-ar"  # a repo id
    assert portable_path(tmp_path.parent) == tmp_path.parent.name  # outside the folder: its name only
