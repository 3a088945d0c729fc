"""Publishing trained models: one commit of a saved output folder, without training leftovers."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from huggingface_hub import HfApi


logger = logging.getLogger(__name__)

# training state and intermediate data stay local; the model, its card, samples and figures go up
IGNORE_PATTERNS = [
    "checkpoint-*",
    "checkpoint-*/**",
    ".partial-*",
    ".partial-*/**",
    "logs/**",
    ".hf_vqgen_run.lock",
    "run_config.json",
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


def check_hub_access(repo_id: str, token: str | None = None) -> str:
    """Before minutes of training: can this machine reach the Hub and write to `repo_id`'s namespace? Returns the
    user name; raises a `ValueError` saying what is missing (network, login) and how to fix it."""
    api = HfApi(token=token)
    try:
        user = api.whoami()
    except Exception as error:  # noqa: BLE001 - network errors, 401s and missing tokens all mean "cannot publish"
        raise ValueError(
            f"--push_to_hub {repo_id}: the Hub cannot be used from here ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Log in (`hf auth login`, or set HF_TOKEN) and check the network, "
            "or train without --push_to_hub and publish the saved folder later."
        ) from None
    namespace = repo_id.split("/")[0] if "/" in repo_id else user["name"]
    allowed = {user["name"], *(org["name"] for org in user.get("orgs", []))}
    if namespace not in allowed:
        raise ValueError(f"--push_to_hub {repo_id}: the logged-in user {user['name']} cannot write to {namespace!r}.")
    return user["name"]


def push_or_explain(folder: str | os.PathLike, repo_id: str) -> str | None:
    """`push_folder_to_hub` after a run; a failure is logged with the saved folder and the command that retries it
    (the trained model is never lost to a failed upload)."""
    try:
        return push_folder_to_hub(folder, repo_id)
    except Exception as error:  # noqa: BLE001 - whatever the reason, the run's result is on disk
        logger.error(
            "Uploading %s to %s failed (%s: %s). The model is saved there; retry with:\n"
            "  python -c \"from hf_vqgen.publishing import push_folder_to_hub; push_folder_to_hub('%s', '%s')\"",
            folder, repo_id, type(error).__name__, str(error).splitlines()[0][:200], folder, repo_id,
        )  # fmt: skip
        return None


def files_to_upload(folder: str | os.PathLike) -> list[str]:
    """The files `push_folder_to_hub` would upload from `folder` (relative paths, sorted): everything but
    `IGNORE_PATTERNS`, as `upload_folder` filters them."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(folder)
    paths = [path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()]
    return sorted(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def main(argv: list[str] | None = None) -> None:
    """`python -m hf_vqgen.publishing FOLDER REPO_ID [--dry_run]`: upload a saved folder, or show what would go up
    and the card it carries."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("repo_id")
    parser.add_argument("--dry_run", action="store_true", help="List the files and print the card; upload nothing.")
    args = parser.parse_args(argv)
    if not Path(args.folder).is_dir():
        parser.error(f"{args.folder} is not a folder")
    files = files_to_upload(args.folder)
    if args.dry_run:
        size = sum((Path(args.folder) / name).stat().st_size for name in files) / 2**20
        print(f"Would upload {len(files)} files ({size:.1f} MiB) to {args.repo_id}:")
        print("\n".join(f"  {name}" for name in files))
        card = Path(args.folder) / "README.md"
        print(card.read_text() if card.is_file() else "(no README.md: the repo would have no model card)")
        return
    check_hub_access(args.repo_id)
    print(push_folder_to_hub(args.folder, args.repo_id))


if __name__ == "__main__":
    main()
