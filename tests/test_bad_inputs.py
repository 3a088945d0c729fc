"""The README's bad-input table: each case is a clear error naming the problem (or a skip with a count), and nothing
is half-written to disk. Cases tested elsewhere are referenced in the README's table."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_vqgen import VQGenPipeline, VQVAEModel, load_pipeline

from .conftest import tiny_vqvae
from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion_pipeline
from .pipelines.test_pipeline_vqgen import tiny_pipeline


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def _to_pickle(folder: Path, name: str, pickle_name: str) -> None:
    torch.save(load_file(folder / name), folder / pickle_name)
    os.remove(folder / name)


def test_pipeline_with_pickle_only_weights_is_refused_unless_allowed(tmp_path):
    pipeline = tiny_pipeline()
    pipeline.save_pretrained(tmp_path)
    _to_pickle(tmp_path / "prior", "model.safetensors", "pytorch_model.bin")
    with pytest.raises(ValueError, match="prior.*pickle weights only.*allow_pickle=True"):
        VQGenPipeline.from_pretrained(tmp_path)
    loaded = VQGenPipeline.from_pretrained(tmp_path, allow_pickle=True)  # the explicit opt-in
    assert torch.equal(loaded.prior.transformer.wte.weight, pipeline.prior.transformer.wte.weight)


def test_tokenizer_with_pickle_only_weights_is_refused_unless_allowed(tmp_path):
    tiny_vqvae().save_pretrained(tmp_path)
    _to_pickle(tmp_path, "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match="tokenizer.*pickle weights only"):
        VQVAEModel.from_pretrained(tmp_path)
    assert VQVAEModel.from_pretrained(tmp_path, allow_pickle=True).config.num_vq_embeddings == 32


@pytest.mark.parametrize("component", ["denoiser", "scheduler", "vqvae"])
def test_pipeline_folder_with_a_missing_component_names_it(tmp_path, component):
    tiny_diffusion_pipeline().save_pretrained(tmp_path)
    for path in sorted((tmp_path / component).iterdir()):
        path.unlink()
    (tmp_path / component).rmdir()
    with pytest.raises(ValueError, match=f"`{component}` component.*missing"):
        load_pipeline(tmp_path)


def test_folder_without_model_index_is_not_a_pipeline(tmp_path):
    with pytest.raises(ValueError, match="model_index.json"):
        load_pipeline(tmp_path)


def test_nan_pixels_are_refused(images):
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        tiny_vqvae().encode_to_ids(images)


def test_nan_loss_stops_training_naming_the_step_and_keeps_the_last_checkpoint(
    tmp_path, fake_fashion_mnist, monkeypatch
):
    import train_vqvae

    from .test_examples import TINY_VQVAE_ARGS

    output_dir = tmp_path / "vqvae"
    args = train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--max_train_steps", "6",
                                                     "--checkpointing_steps", "2"])  # fmt: skip
    original = train_vqvae.VQGANLoss.generator_loss

    def nan_at_third_step(self, real, fake, commit_loss, discriminator, step, last_layer):
        loss, logs = original(self, real, fake, commit_loss, discriminator, step, last_layer)
        return (loss * float("nan") if step == 2 else loss), logs

    monkeypatch.setattr(train_vqvae.VQGANLoss, "generator_loss", nan_at_third_step)
    with pytest.raises(FloatingPointError, match="at step 3"):
        train_vqvae.main(args)
    assert (output_dir / "checkpoint-2").is_dir() and not (output_dir / "checkpoint-4").exists()
    assert not (output_dir / "diffusion_pytorch_model.safetensors").exists()  # no final model from a broken run
    steps = [json.loads(line)["step"] for line in (output_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_name_value_settings_parse_to_numbers_or_words_and_refuse_other_text():
    from hf_vqgen.utils import parse_settings

    parsed = parse_settings(["temperature=0.85", "top_k=100", "guidance_schedule=linear", "guidance_scale=3"])
    assert parsed == {"temperature": 0.85, "top_k": 100, "guidance_schedule": "linear", "guidance_scale": 3}
    assert isinstance(parsed["top_k"], int) and isinstance(parsed["temperature"], float)
    with pytest.raises(ValueError, match="--settings: 'top_k' is not name=value"):
        parse_settings(["top_k"], "--settings")
