"""Resolving a Hub repo id to a local folder before diffusers loads a pipeline.

diffusers' own download step rejects components from libraries it does not know (such as `hf_vqgen`) unless the
repo ships their code, so repo ids are resolved with `huggingface_hub.snapshot_download` and the pipeline is loaded
from the resulting folder. With a populated cache and `HF_HUB_OFFLINE=1` this works offline.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download

from ..utils import reject_missing_folder


DOWNLOAD_KWARGS = ("revision", "token", "cache_dir", "local_files_only")
# what a pipeline folder needs; everything else in a repo (checkpoints, logs) stays on the Hub
PIPELINE_PATTERNS = ["model_index.json", "*/config.json", "*/*.safetensors", "*/*.json", "*.md", "*.png", "*.gif"]


def resolve_pretrained_path(name_or_path: str | os.PathLike, kwargs: dict) -> tuple[str, dict]:
    """Returns a local folder for `name_or_path` and the `from_pretrained` kwargs left for diffusers."""
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser()), kwargs
    # `./pretrained/x`, `pretrained/x` (with `pretrained/` here), `~/runs/x`: a mistyped folder, not a repo id
    reject_missing_folder(str(name_or_path), what="a pipeline folder", hub_kind="model")
    kwargs = dict(kwargs)
    download = {key: kwargs.pop(key) for key in DOWNLOAD_KWARGS if key in kwargs}
    folder = snapshot_download(repo_id=str(name_or_path), allow_patterns=PIPELINE_PATTERNS, **download)
    return folder, kwargs
