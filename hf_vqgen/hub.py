"""Publishing trained models: one commit of a saved output folder, without training leftovers."""

from __future__ import annotations

import os

from huggingface_hub import HfApi


# training state and intermediate data stay local; the model, its card, samples and figures go up
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/**",
    ".partial-*",
    ".partial-*/**",
    "logs/**",
    "tokens/**",
    "validation/**",
    "*.bin",
    "*.pt",
    "*.pkl",
]


def push_folder_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload hf_vqgen model",
) -> str:
    """Create `repo_id` if needed and upload `folder` in one commit (`upload_folder`), leaving out checkpoints,
    logs, cached tokens and validation grids. Returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        ignore_patterns=IGNORE_PATTERNS,
        commit_message=commit_message,
    )
    return str(commit)
