"""The Fashion-MNIST pipelines shipped in `pretrained/` (see pretrained/README.md) load and sample with a seed."""

import hashlib
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


# sha256 (first 16 hex digits) of the int64 token ids for seed 0, computed from the code before the sampling
# refactor of issue 12: refactors must not change what the shipped pipelines sample
PINNED_SAMPLES = [
    ("fashion-mnist-ar", {"guidance_scale": 1.5}, "56e4b3b088019600"),
    ("fashion-mnist-ar", {"temperature": 0.9, "top_k": 50, "top_p": 0.95}, "7c111c1ac14c483a"),
    ("fashion-mnist-diffusion", {"num_inference_steps": 8, "guidance_scale": 2.0}, "b66bc2499e9bbc1e"),
    ("fashion-mnist-diffusion", {"num_inference_steps": 8, "temperature": 0.8, "top_k": 20}, "9349e564497a6772"),
]


@pytest.mark.parametrize(("name", "kwargs", "digest"), PINNED_SAMPLES)
def test_shipped_pipelines_sample_the_pinned_token_ids(name, kwargs, digest):
    pipeline = load_pipeline(PRETRAINED / name)
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    token_ids = pipeline(
        batch_size=4, class_labels=[0, 3, 5, 9], output_type="token_ids", generator=generator, **kwargs
    ).token_ids
    assert hashlib.sha256(token_ids.to(torch.int64).numpy().tobytes()).hexdigest()[:16] == digest
