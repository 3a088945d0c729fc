"""Inputs that used to be accepted and give silently wrong results, or fail with an unclear message (issue 13:
pixel ranges and types, saves that could mix two runs, pipeline folders of the wrong class or damaged). Each now
gives the right result or a clear error naming the culprit. Image modes, folder layouts and token datasets are in
test_image_modes.py, test_image_folder.py and test_token_validation.py."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline, load_pipeline
from hf_vqgen.pipelines.token_pipeline import TOKENIZER_HASH_KEY
from hf_vqgen.training.export import export_atomically
from hf_vqgen.utils import state_dict_digest

from .conftest import tiny_vqvae
from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion_pipeline
from .pipelines.test_pipeline_vqgen import tiny_pipeline


ROOT = Path(__file__).resolve().parents[1]


# pixel ranges and types


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        (torch.full((2, 1, 8, 8), 200.0), r"\[-1, 1\].*\[0, 255\]"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "float tensor"),
    ],
)
def test_encode_to_ids_refuses_pixels_outside_the_model_range(pixels, match):
    with pytest.raises(ValueError, match=match):
        tiny_vqvae().encode_to_ids(pixels)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (torch.full((1, 1, 8, 8), 255.0), r"\[-1, 1\]"),
        (torch.zeros(1, 1, 16, 16), r"\(B, 1, 8, 8\).*got shape \(1, 1, 16, 16\)"),
        (torch.zeros(1, 3, 8, 8), r"\(B, 1, 8, 8\)"),
    ],
)
def test_completion_image_of_the_wrong_range_or_size_is_refused(image, match):
    with pytest.raises(ValueError, match=match):
        tiny_pipeline()(image=image, num_prefix_rows=1, output_type="token_ids")


@pytest.mark.parametrize("labels", [[0.7, 1.2], torch.tensor([1.0, 2.0]), [True, False]])
def test_non_integer_class_labels_are_refused_not_truncated(labels):
    with pytest.raises(ValueError, match="`class_labels` must be integers"):
        tiny_pipeline()(batch_size=2, class_labels=labels, output_type="token_ids")


def test_numpy_integers_are_accepted_for_batch_size_and_labels():
    out = tiny_pipeline()(batch_size=np.int64(2), class_labels=np.array([0, 2]), output_type="token_ids")
    assert out.token_ids.shape[0] == 2


@pytest.mark.parametrize("mask", [torch.full((4, 4), 0.3), torch.full((1, 1, 8, 8), 0.3)])
def test_soft_inpainting_masks_are_refused(mask):
    pipeline = tiny_diffusion_pipeline()
    token_ids = torch.zeros(1, 4, 4, dtype=torch.long)
    kwargs = {"token_mask": mask} if mask.ndim == 2 else {"mask_image": mask, "image": torch.zeros(1, 1, 8, 8)}
    if "image" in kwargs:
        token_ids = None
    with pytest.raises(ValueError, match="must be binary"):
        pipeline(token_ids=token_ids, num_inference_steps=2, output_type="token_ids", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperature": float("nan")}, ValueError, "temperature.*finite"),
        ({"temperature": float("inf")}, ValueError, "temperature.*finite"),
        ({"guidance_scale": float("nan")}, ValueError, "guidance_scale.*finite"),
        ({"generator": "0"}, TypeError, "torch.Generator"),
        ({"top_k": 2.5}, ValueError, "top_k"),
    ],
)
@pytest.mark.parametrize("make", [tiny_pipeline, tiny_diffusion_pipeline], ids=["ar", "diffusion"])
def test_sampling_settings_that_cannot_work_are_named(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        make()(batch_size=1, output_type="token_ids", **kwargs)


# pipeline folders


def test_loading_a_folder_of_another_pipeline_class_is_refused(tmp_path):
    tiny_diffusion_pipeline().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a DiscreteDiffusionPipeline, not a VQGenPipeline"):
        VQGenPipeline.from_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps({**index, "_class_name": "NoSuchPipeline"}))
    with pytest.raises(ValueError, match="holds a NoSuchPipeline"):
        DiscreteDiffusionPipeline.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="NoSuchPipeline"):
        load_pipeline(tmp_path)


def test_model_index_that_is_not_json_names_the_file(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    (tmp_path / "model_index.json").write_text("{ not json")
    with pytest.raises(ValueError, match="model_index.json is not valid JSON"):
        load_pipeline(tmp_path)


@pytest.mark.parametrize("make, component", [(tiny_pipeline, "prior"), (tiny_diffusion_pipeline, "denoiser")])
def test_truncated_prior_weights_name_the_file(tmp_path, make, component):
    make().save_pretrained(tmp_path)
    weights = tmp_path / component / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{component}/model.safetensors is truncated"):
        load_pipeline(tmp_path)


def test_prior_paired_with_another_tokenizer_is_refused(tmp_path):
    pipeline = tiny_pipeline()
    setattr(pipeline.prior.config, TOKENIZER_HASH_KEY, state_dict_digest(pipeline.vqvae.state_dict()))
    pipeline.save_pretrained(tmp_path)
    assert load_pipeline(tmp_path).prior.config.tokenizer_weights_sha256  # the record survives a round trip
    other = tiny_vqvae()
    with torch.no_grad():
        other.quantize.embedding.weight.add_(0.5)  # same config and grid, other codes
    other.save_pretrained(tmp_path / "vqvae")
    with pytest.raises(ValueError, match="trained on the tokens of another tokenizer"):
        load_pipeline(tmp_path)
    for dtype in (torch.bfloat16, torch.float16):  # the check reads the files: a low-precision load is checked too
        with pytest.raises(ValueError, match="trained on the tokens of another tokenizer"):
            load_pipeline(tmp_path, dtype=dtype)


def test_a_prior_without_a_tokenizer_record_loads_with_a_warning(tmp_path, caplog):
    tiny_pipeline().save_pretrained(tmp_path)
    config_file = tmp_path / "prior" / "config.json"
    config = json.loads(config_file.read_text())
    config.pop(TOKENIZER_HASH_KEY, None)
    config_file.write_text(json.dumps(config))
    with caplog.at_level("WARNING"):
        load_pipeline(tmp_path)
    assert "cannot be checked" in caplog.text


# saves that cannot mix two runs


def test_export_keeps_checkpoints_and_replaces_the_model(tmp_path):
    output_dir = tmp_path / "run"
    (output_dir / "checkpoint-2").mkdir(parents=True)
    (output_dir / "checkpoint-2" / "state.bin").write_bytes(b"state")
    (output_dir / "old.json").write_text("old")
    (output_dir / "denoiser").mkdir()  # an earlier diffusion export into the same folder
    (output_dir / "denoiser" / "config.json").write_text("{}")

    def write(folder):
        (folder / "old.json").write_text("new")

    export_atomically(output_dir, write)
    assert (output_dir / "old.json").read_text() == "new"
    assert (output_dir / "checkpoint-2" / "state.bin").read_bytes() == b"state"
    assert not (output_dir / "denoiser").exists()  # nothing of the earlier pipeline survives
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left


def test_a_failed_export_leaves_the_folder_as_it_was(tmp_path):
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    (output_dir / "model.json").write_text("old")

    def write(folder):
        (folder / "model.json").write_text("new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export_atomically(output_dir, write)
    assert (output_dir / "model.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run"]


EXPORT_CHILD = textwrap.dedent(
    """
    import json, sys, torch
    from hf_vqgen.training.export import export_atomically
    sys.path.insert(0, {root!r})
    from tests.pipelines.test_pipeline_vqgen import tiny_pipeline

    pipeline = tiny_pipeline(seed=1)

    def write(folder):
        pipeline.save_pretrained(folder)
        (folder / "eval_results.json").write_text(json.dumps({{"run": "new"}}))
        (folder / "README.md").write_text("new card")

    print("ready", flush=True)
    export_atomically({output_dir!r}, write)
    print("done", flush=True)
    """
)


def _run_fingerprint(folder: Path) -> tuple:
    pipeline = load_pipeline(folder)
    weights = state_dict_digest(pipeline.prior.state_dict()), state_dict_digest(pipeline.vqvae.state_dict())
    return weights, json.loads((folder / "eval_results.json").read_text())["run"], (folder / "README.md").read_text()


def test_sigkill_during_the_final_save_never_leaves_a_mixture(tmp_path):
    """10 kills at random moments of an export over a folder holding another run: the folder always loads as the
    complete old run or the complete new one, with its own card and figures, and the checkpoints stay."""
    output_dir = tmp_path / "run"
    old = tiny_pipeline(seed=0)
    old.save_pretrained(output_dir)
    (output_dir / "eval_results.json").write_text(json.dumps({"run": "old"}))
    (output_dir / "README.md").write_text("old card")
    (output_dir / "checkpoint-5").mkdir()
    (output_dir / "checkpoint-5" / "state.bin").write_bytes(b"state")
    old_print = _run_fingerprint(output_dir)
    new = tiny_pipeline(seed=1)
    new_weights = state_dict_digest(new.prior.state_dict()), state_dict_digest(new.vqvae.state_dict())
    assert new_weights != old_print[0]

    script = EXPORT_CHILD.format(root=str(ROOT), output_dir=str(output_dir))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(0)
    for attempt in range(10):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, 0.08))  # the export itself takes ~0.06 s here: most kills land inside it
        child.send_signal(signal.SIGKILL)
        child.wait()
        fingerprint = _run_fingerprint(output_dir)
        assert fingerprint in (old_print, (new_weights, "new", "new card")), f"attempt {attempt}: a mixture"
        assert (output_dir / "checkpoint-5" / "state.bin").read_bytes() == b"state"
        if fingerprint[1] == "new":  # start the next attempt from the old run again
            old.save_pretrained(output_dir)
            (output_dir / "eval_results.json").write_text(json.dumps({"run": "old"}))
            (output_dir / "README.md").write_text("old card")


def test_export_into_a_symlinked_folder_replaces_the_folder_it_points_to(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "model.json").write_text("old")
    (tmp_path / "link").symlink_to(real)

    def write(folder):
        (folder / "model.json").write_text("new")

    export_atomically(tmp_path / "link", write)
    assert (tmp_path / "link").is_symlink() and (real / "model.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_kill_between_the_fallback_moves_is_undone_before_the_next_run(tmp_path):
    from hf_vqgen.training.export import recover_interrupted_export

    previous = tmp_path / ".run.export-123-previous"  # the old run, moved aside; the new one never moved in
    (previous / "checkpoint-2").mkdir(parents=True)
    recover_interrupted_export(tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint-2").is_dir() and not previous.exists()
