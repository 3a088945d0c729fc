import argparse
import json

import pytest
import yaml
from huggingface_hub import ModelCard

from hf_vqgen.model_cards import model_facts, render_model_card, training_context, update_model_card, write_model_card

from .conftest import tiny_vqvae
from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion_pipeline


def _metadata(card_text: str) -> dict:
    assert card_text.startswith("---\n")
    return yaml.safe_load(card_text.split("---\n")[1])


@pytest.mark.parametrize("kind", ["tokenizer", "ar", "diffusion"])
def test_cards_render_valid_metadata_metrics_and_a_runnable_snippet(kind):
    pipeline = tiny_diffusion_pipeline()
    scheduler = pipeline.scheduler if kind == "diffusion" else None
    layout = None if kind == "tokenizer" else pipeline.layout
    args = argparse.Namespace(dataset_name="fashion_mnist", learning_rate=1e-3, output_dir="out",
                              hub_model_id="user/model", use_ema=True, push_to_hub=False, seed=0)  # fmt: skip
    context = training_context(kind, "train_prior.py", args, model_facts(pipeline.vqvae, layout, scheduler),
                               {"eval_bits_per_token": 4.5}, "the evaluator")  # fmt: skip
    text = str(render_model_card(context, "samples.png"))
    metadata = _metadata(text)
    assert metadata["library_name"] == "hf_vqgen" and metadata["pipeline_tag"] == "unconditional-image-generation"
    assert metadata["datasets"] == ["zalando-datasets/fashion_mnist"] and metadata["license"] == "apache-2.0"
    metrics = metadata["model-index"][0]["results"][0]["metrics"]
    assert metrics == [{"type": "eval_bits_per_token", "value": 4.5, "name": "eval_bits_per_token (the evaluator)"}]
    assert 'from_pretrained("user/model")' in text and "![samples](samples.png)" in text
    assert "examples/train_prior.py --dataset_name fashion_mnist --learning_rate 0.001 --seed 0 --use_ema" in text
    assert "output_dir" not in text  # where files went is not a hyperparameter
    limited = str(render_model_card(context | {"limitations": "Faces only as a kind."}, "samples.png"))
    assert limited.rstrip().endswith("Faces only as a kind.")  # every kind's card says what it cannot do
    if kind == "diffusion":  # saved sampling: the call's defaults and the scheduler's settings chosen with them
        saved = {"sampling_defaults": {"guidance_scale": 2}, "scheduler_settings": {"choice_temperature": 8}}
        text = str(render_model_card(context | saved, "samples.png"))
        assert "saved with this pipeline: `guidance_scale=2`" in text
        assert "scheduler is saved with `choice_temperature=8`" in text


def test_update_card_adds_metrics_and_keeps_the_earlier_ones(tmp_path):
    args = argparse.Namespace(dataset_name="fashion_mnist", output_dir=str(tmp_path))
    context = training_context("tokenizer", "train_vqvae.py", args, model_facts(tiny_vqvae()), {"psnr": 25.0}, "train")
    write_model_card(tmp_path, context)
    update_model_card(tmp_path, "evaluate", {"fid": 1.5, "psnr": 25.1})
    card = ModelCard.load(tmp_path / "README.md")
    values = {(m["name"], m["value"]) for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    assert values == {("psnr (train)", 25.0), ("fid (evaluate)", 1.5), ("psnr (evaluate)", 25.1)}
    assert json.loads((tmp_path / "model_card.json").read_text())["metrics"]["evaluate"]["fid"] == 1.5
    with pytest.raises(ValueError, match="model_card.json"):
        update_model_card(tmp_path / "elsewhere", "evaluate", {})
