from huggingface_hub import HfApi

from hf_vqgen import hub


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
