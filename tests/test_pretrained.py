"""The Fashion-MNIST pipelines shipped in `pretrained/` (see pretrained/README.md) load and sample with a seed."""

from pathlib import Path

import pytest
import torch
from diffusers import VQModel
from huggingface_hub import ModelCard

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline, load_pipeline


PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


@pytest.mark.parametrize(
    ("name", "cls", "kwargs"),
    [
        ("fashion-mnist-ar", VQGenPipeline, {"guidance_scale": 1.5}),
        ("fashion-mnist-diffusion", DiscreteDiffusionPipeline, {"num_inference_steps": 8}),
    ],
)
def test_shipped_pipelines_load_and_sample_reproducibly(name, cls, kwargs):
    pipeline = load_pipeline(PRETRAINED / name)
    pipeline.set_progress_bar_config(disable=True)
    assert type(pipeline) is cls and pipeline.layout.num_classes == 10 and pipeline.layout.num_codes == 256
    kwargs = {"batch_size": 3, "class_labels": [0, 5, 9], "output_type": "pt", **kwargs}
    first = pipeline(generator=torch.Generator().manual_seed(0), **kwargs)
    again = pipeline(generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(first.token_ids, again.token_ids) and torch.equal(first.images, again.images)
    assert first.images.shape == (3, 1, 28, 28) and first.token_ids.shape == (3, 7, 7)
    assert 0 <= first.images.min() and first.images.max() <= 1

    metadata = ModelCard.load(PRETRAINED / name / "README.md").data.to_dict()
    metrics = {m["type"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert {"fid", "precision", "recall"} <= metrics and metadata["library_name"] == "hf_vqgen"


def test_shipped_tokenizer_loads_in_stock_diffusers():
    tokenizer = VQModel.from_pretrained(PRETRAINED / "fashion-mnist-tokenizer")
    images = torch.zeros(2, 1, 28, 28)
    assert tokenizer(images).sample.shape == (2, 1, 28, 28)
