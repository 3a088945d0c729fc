import numpy as np
import PIL.Image
import pytest
import torch
from transformers import GPT2LMHeadModel

from hf_vqgen import TokenLayout, VQGenPipeline
from hf_vqgen.pipelines import hub_resolution as hub
from hf_vqgen.pipelines.autoregressive_sampling import (
    build_input_ids,
    next_tokens,
    sample_with_cache,
    sample_with_recompute,
)

from ..conftest import tiny_vqvae


def tiny_pipeline(num_classes: int = 3, seed: int = 0) -> VQGenPipeline:
    vqvae = tiny_vqvae().eval()
    layout = TokenLayout.for_tokenizer(vqvae, num_classes=num_classes)
    torch.manual_seed(seed)
    prior = GPT2LMHeadModel(layout.gpt2_config(n_layer=2, n_head=2, n_embd=32)).eval()
    pipeline = VQGenPipeline(vqvae=vqvae, prior=prior)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_save_load_gives_identical_samples(tmp_path):
    pipeline = tiny_pipeline()
    before = pipeline(
        batch_size=4, class_labels=[0, 1, 2, 0], guidance_scale=2.0, generator=_seeded(), output_type="pt"
    )
    pipeline.save_pretrained(tmp_path)
    assert (tmp_path / "prior" / "model.safetensors").is_file()
    assert (tmp_path / "vqvae" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = VQGenPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    after = loaded(batch_size=4, class_labels=[0, 1, 2, 0], guidance_scale=2.0, generator=_seeded(), output_type="pt")
    assert torch.equal(before.token_ids, after.token_ids) and torch.equal(before.images, after.images)


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_kv_cache_sampler_equals_full_recompute(guidance_scale):
    pipeline = tiny_pipeline()
    layout = pipeline.layout
    labels = torch.tensor([0, 1, 2, 1, 0])
    input_ids = build_input_ids(layout, 5, labels, None, guided=guidance_scale != 1.0)
    mask = layout.code_mask()
    cached_gen, recompute_gen = _seeded(3), _seeded(3)
    cached = sample_with_cache(
        pipeline.prior, input_ids, layout.num_tokens,
        lambda logits: next_tokens(logits, mask, guidance_scale, 1.0, None, None, cached_gen),
    )  # fmt: skip
    recomputed = sample_with_recompute(
        pipeline.prior, input_ids, layout.num_tokens,
        lambda logits: next_tokens(logits, mask, guidance_scale, 1.0, None, None, recompute_gen),
    )  # fmt: skip
    assert cached.shape == (5, layout.num_tokens) and torch.equal(cached, recomputed)


@pytest.mark.parametrize(
    "kwargs", [{}, {"guidance_scale": 2.0}, {"prefix_token_ids": torch.zeros(3, 5, dtype=torch.long)}]
)
def test_static_cache_samples_the_same_codes_as_the_dynamic_cache(kwargs):
    pipeline = tiny_pipeline()
    common = {"batch_size": 3, "class_labels": [0, 2, 1], "output_type": "token_ids", **kwargs}
    dynamic = pipeline(generator=_seeded(5), **common).token_ids
    static = pipeline(generator=_seeded(5), static_cache=True, **common).token_ids
    assert torch.equal(dynamic, static)


def test_compiled_prior_samples_the_same_codes_and_is_never_saved(tmp_path):
    pipeline = tiny_pipeline()
    eager = pipeline(batch_size=2, generator=_seeded(1), output_type="token_ids").token_ids
    pipeline.compile_prior(backend="aot_eager")  # the path inductor takes, without generating code (fast on CPU)
    assert torch.equal(pipeline(batch_size=2, generator=_seeded(1), output_type="token_ids").token_ids, eager)
    pipeline.save_pretrained(tmp_path)
    assert VQGenPipeline.from_pretrained(tmp_path).prior.__class__.__name__ == "GPT2LMHeadModel"


def test_guidance_scale_one_equals_plain_conditional_model():
    pipeline = tiny_pipeline()
    layout = pipeline.layout
    labels = torch.tensor([2, 0, 1])
    generator = _seeded(7)
    plain = sample_with_recompute(
        pipeline.prior, layout.prompt(3, labels), layout.num_tokens,
        lambda logits: next_tokens(logits, layout.code_mask(), 1.0, 1.0, None, None, generator),
    )  # fmt: skip
    out = pipeline(
        batch_size=3, class_labels=labels, guidance_scale=1.0, generator=_seeded(7), output_type="token_ids"
    )
    assert torch.equal(out.token_ids.flatten(1), plain)


def test_completion_keeps_prefix_tokens_exactly():
    pipeline = tiny_pipeline()
    prefix = torch.randint(0, 32, (2, 6), generator=_seeded(1))
    out = pipeline(
        batch_size=2, class_labels=[1, 2], prefix_token_ids=prefix, generator=_seeded(), output_type="token_ids"
    )
    assert torch.equal(out.token_ids.flatten(1)[:, :6], prefix)
    full = torch.randint(0, 32, (2, 16), generator=_seeded(2))
    done = pipeline(batch_size=2, prefix_token_ids=full, output_type="token_ids")
    assert torch.equal(done.token_ids.flatten(1), full)


def test_completion_from_image_rows():
    pipeline = tiny_pipeline()
    images = torch.rand(3, 1, 8, 8, generator=_seeded(4)) * 2 - 1
    out = pipeline(image=images, num_prefix_rows=2, generator=_seeded(), output_type="token_ids")
    expected = pipeline.vqvae.encode_to_ids(images)[:, :2]
    assert out.token_ids.shape == (3, 4, 4) and torch.equal(out.token_ids[:, :2], expected)
    pil = PIL.Image.fromarray(np.zeros((8, 8), dtype=np.uint8))
    assert pipeline(image=[pil, pil], num_prefix_rows=1, output_type="token_ids").token_ids.shape == (2, 4, 4)


def test_only_codes_are_emitted_even_when_specials_are_likely():
    pipeline = tiny_pipeline()
    with torch.no_grad():  # make every special token far more likely than any code
        pipeline.prior.lm_head.weight[32:] = pipeline.prior.lm_head.weight[32:] * 0 + 5.0
    out = pipeline(
        batch_size=4, class_labels=[0, 1, 2, 0], guidance_scale=2.0, generator=_seeded(), output_type="token_ids"
    )
    assert out.token_ids.max() < 32 and out.token_ids.min() >= 0


@pytest.mark.parametrize(
    "output_type, check",
    [
        ("pil", lambda images: isinstance(images[0], PIL.Image.Image) and images[0].size == (8, 8)),
        ("np", lambda images: images.shape == (2, 8, 8, 1) and 0 <= images.min() and images.max() <= 1),
        ("pt", lambda images: images.shape == (2, 1, 8, 8) and 0 <= images.min() and images.max() <= 1),
        ("token_ids", lambda images: images is None),
    ],
)
def test_output_types(output_type, check):
    out = tiny_pipeline()(batch_size=2, generator=_seeded(), output_type=output_type)
    assert check(out.images) and out.token_ids.shape == (2, 4, 4)
    images, token_ids = tiny_pipeline()(batch_size=2, generator=_seeded(), output_type=output_type, return_dict=False)
    assert torch.equal(token_ids, out.token_ids)


def test_greedy_equals_top_k_one():
    pipeline = tiny_pipeline()
    greedy = pipeline(batch_size=2, temperature=0.0, output_type="token_ids").token_ids
    top1 = pipeline(batch_size=2, top_k=1, generator=_seeded(9), output_type="token_ids").token_ids
    assert torch.equal(greedy, top1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"output_type": "latent"}, "output_type"),
        ({"class_labels": [5, 0]}, "class_labels"),
        ({"class_labels": [0]}, "one label per sample"),
        ({"prefix_token_ids": torch.zeros(2, 17, dtype=torch.long)}, "grid holds only 16"),
        ({"prefix_token_ids": torch.full((2, 3), 40)}, "codebook ids"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"image": torch.zeros(2, 1, 8, 8), "num_prefix_rows": 5}, "num_prefix_rows"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_pipeline()(**{"batch_size": 2, **kwargs})


def test_unconditional_prior_rejects_labels_and_guidance():
    pipeline = tiny_pipeline(num_classes=0)
    with pytest.raises(ValueError, match="unconditional"):
        pipeline(batch_size=1, class_labels=[0])
    with pytest.raises(ValueError, match="null class"):
        pipeline(batch_size=1, guidance_scale=2.0)


def test_prior_vocabulary_must_match_tokenizer():
    vqvae = tiny_vqvae(num_vq_embeddings=64)
    layout = TokenLayout(num_codes=32, grid_height=4, grid_width=4)
    prior = GPT2LMHeadModel(layout.gpt2_config(n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="num_vq_embeddings"):
        VQGenPipeline(vqvae=vqvae, prior=prior)
    wrong_grid = GPT2LMHeadModel(TokenLayout(64, 5, 5).gpt2_config(n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="5x5"):
        VQGenPipeline(vqvae=vqvae, prior=wrong_grid)


def test_repo_ids_are_resolved_with_snapshot_download(monkeypatch, tmp_path):
    calls = {}

    def fake_snapshot_download(repo_id, **kwargs):
        calls.update(repo_id=repo_id, **kwargs)
        return str(tmp_path)

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot_download)
    folder, rest = hub.resolve_pretrained_path("user/vqgen", {"revision": "v1", "local_files_only": True, "dtype": 1})
    assert folder == str(tmp_path) and rest == {"dtype": 1}
    assert calls["repo_id"] == "user/vqgen" and calls["revision"] == "v1" and calls["local_files_only"] is True
    assert hub.resolve_pretrained_path(tmp_path, {"x": 1}) == (str(tmp_path), {"x": 1})
