import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi

from hf_vqgen import VQGenPipeline
from hf_vqgen import publishing as hub

from .pipelines.test_pipeline_vqgen import tiny_pipeline


def test_push_uploads_one_folder_without_training_leftovers(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw["repo_id"], kw)) or "https://commit"
    )
    assert hub.push_folder_to_hub(tmp_path, "user/model", private=True) == "https://commit"
    (create, upload) = calls
    assert create[1] == "user/model" and create[2]["exist_ok"] and create[2]["private"]
    assert upload[2]["folder_path"] == str(tmp_path)
    assert {"checkpoint-*", "logs/**", "tokens/**"} <= set(upload[2]["ignore_patterns"])


def _committed_files(folder, ignore_patterns) -> list[str]:
    """The files `upload_folder` would commit: everything under `folder` not matched by `ignore_patterns`."""
    from huggingface_hub.utils import filter_repo_objects

    paths = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=ignore_patterns))


def _lay_out_hub_cache(cache: Path, repo_id: str, source: Path, files: list[str]) -> None:
    """The folder structure `snapshot_download` leaves in the cache (blobs symlinked from snapshots/<commit>)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for index, name in enumerate(files):
        blob = repo / "blobs" / f"blob{index:04d}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, blob)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


LOAD_OFFLINE = """
import sys, torch
from hf_vqgen import load_pipeline
pipeline = load_pipeline(sys.argv[1])
out = pipeline(batch_size=4, class_labels=[0, 1, 2, 0], generator=torch.Generator().manual_seed(0), output_type="token_ids")
torch.save(out.token_ids, sys.argv[2])
"""


def test_push_then_load_by_repo_id_offline_gives_identical_samples(tmp_path, monkeypatch):
    trained = tmp_path / "trained"  # a training output folder: pipeline, card, samples, and leftovers
    pipeline = tiny_pipeline()
    pipeline.save_pretrained(trained)
    for name in ("README.md", "model_card.json", "samples.png"):
        (trained / name).write_text(name)
    (trained / "checkpoint-2").mkdir()
    (trained / "checkpoint-2" / "optimizer.bin").write_text("state")
    loaded = VQGenPipeline.from_pretrained(trained)

    uploads = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)

    def capture_upload(self, **kw):  # what would be committed, copied before the temporary folder goes
        files = _committed_files(kw["folder_path"], kw["ignore_patterns"])
        copy = tmp_path / "uploaded"
        for name in files:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(kw["folder_path"]) / name, copy / name)
        uploads.append((kw["repo_id"], kw["commit_message"], files))
        return "https://hub/commit/1"

    monkeypatch.setattr(HfApi, "upload_folder", capture_upload)
    assert loaded.push_to_hub("user/vqgen") == "https://hub/commit/1"
    ((repo_id, _, files),) = uploads  # one commit
    assert repo_id == "user/vqgen"
    assert files == [
        "README.md", "model_card.json", "model_index.json", "pipeline.py", "prior/config.json",
        "prior/generation_config.json", "prior/model.safetensors", "samples.png", "vqvae/config.json",
        "vqvae/diffusion_pytorch_model.safetensors",
    ]  # fmt: skip

    cache = tmp_path / "hub-cache"
    _lay_out_hub_cache(cache, "user/vqgen", tmp_path / "uploaded", files)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", LOAD_OFFLINE, "user/vqgen", str(tmp_path / "ids.pt")], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = pipeline(batch_size=4, class_labels=[0, 1, 2, 0], generator=torch.Generator().manual_seed(0),
                        output_type="token_ids").token_ids  # fmt: skip
    assert torch.equal(torch.load(tmp_path / "ids.pt"), expected)


def test_plain_diffusers_loads_a_saved_pipeline_with_custom_pipeline(tmp_path):
    from diffusers import DiffusionPipeline

    pipeline = tiny_pipeline()
    pipeline.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path), trust_remote_code=True)
    assert type(loaded) is VQGenPipeline
    kwargs = {"batch_size": 2, "class_labels": [0, 1], "output_type": "token_ids"}
    expected = pipeline(generator=torch.Generator().manual_seed(0), **kwargs).token_ids
    assert torch.equal(loaded(generator=torch.Generator().manual_seed(0), **kwargs).token_ids, expected)


def test_publishing_is_checked_before_training_and_names_the_fix(monkeypatch):
    def offline(self):
        raise ConnectionError("Failed to resolve huggingface.co")

    monkeypatch.setattr(HfApi, "whoami", offline)
    with pytest.raises(ValueError, match="hf auth login.*without --push_to_hub"):
        hub.check_hub_access("user/model")
    monkeypatch.setattr(HfApi, "whoami", lambda self: {"name": "someone", "orgs": [{"name": "team"}]})
    assert hub.check_hub_access("team/model") == "someone"
    with pytest.raises(ValueError, match="cannot write to 'other'"):
        hub.check_hub_access("other/model")


def test_a_failed_upload_names_the_saved_folder_and_the_retry(tmp_path, monkeypatch, caplog):
    def failing(*args, **kwargs):
        raise ConnectionError("network down")

    monkeypatch.setattr(hub, "push_folder_to_hub", failing)
    assert hub.push_or_explain(tmp_path, "user/model") is None
    assert str(tmp_path) in caplog.text and "push_folder_to_hub(" in caplog.text


def test_a_dry_run_lists_what_would_go_up_and_prints_the_card(tmp_path, capsys):
    folder = tmp_path / "run"
    tiny_pipeline().save_pretrained(folder)
    (folder / "README.md").write_text("---\nlibrary_name: hf_vqgen\n---\n# card")
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "optimizer.bin").write_bytes(b"state")
    (folder / "run_config.json").write_text("{}")
    hub.main([str(folder), "user/model", "--dry_run"])
    out = capsys.readouterr().out
    assert "model_index.json" in out and "# card" in out
    assert "checkpoint-2" not in out and "run_config.json" not in out  # training state stays local
