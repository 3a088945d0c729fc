import PIL.Image
import pytest
import torch
from transformers import BertForMaskedLM

from hf_vqgen import DiscreteDiffusionPipeline, DiscreteDiffusionScheduler, TokenLayout, export_reverse_process

from ..conftest import tiny_vqvae


def tiny_pipeline(corruption: str = "absorbing", num_classes: int = 3, noise_levels: bool = True):
    vqvae = tiny_vqvae().eval()
    layout = TokenLayout.for_tokenizer(
        vqvae, num_classes=num_classes, use_mask_token=corruption != "uniform",
        num_noise_levels=20 if noise_levels else 0,
    )  # fmt: skip
    torch.manual_seed(0)
    denoiser = BertForMaskedLM(layout.bert_config(2, 2, 32)).eval()
    scheduler = DiscreteDiffusionScheduler(
        layout.num_codes, layout.mask_token_id, num_train_timesteps=20, corruption=corruption
    )
    pipeline = DiscreteDiffusionPipeline(vqvae=vqvae, denoiser=denoiser, scheduler=scheduler)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("corruption", ["uniform", "absorbing", "mask_and_replace"])
def test_samples_are_codes_and_seeded_runs_reproduce(corruption):
    pipeline = tiny_pipeline(corruption)
    kwargs = {"batch_size": 3, "class_labels": [0, 1, 2], "num_inference_steps": 5, "output_type": "pt"}
    first = pipeline(generator=_seeded(), **kwargs)
    second = pipeline(generator=_seeded(), **kwargs)
    assert torch.equal(first.token_ids, second.token_ids) and torch.equal(first.images, second.images)
    assert first.token_ids.shape == (3, 4, 4) and first.token_ids.max() < 32 and first.token_ids.min() >= 0
    assert first.images.shape == (3, 1, 8, 8)
    assert not torch.equal(first.token_ids, pipeline(generator=_seeded(1), **kwargs).token_ids)


def test_absorbing_sampling_runs_every_step_and_ends_without_mask():
    pipeline = tiny_pipeline("absorbing")
    seen = []
    out = pipeline(batch_size=2, num_inference_steps=6, output_type="token_ids", generator=_seeded(),
                   callback_on_step_end=lambda pipe, i, t, kw: seen.append((kw["token_ids"] == pipe.layout.mask_token_id).sum()))  # fmt: skip
    assert out.num_steps_run == 6 and len(seen) == 6 and seen[-1] == 0
    assert all(a > b for a, b in zip(seen, seen[1:]))  # fewer MASK tokens every step


def test_original_sampler_stops_early_once_nothing_changes():
    pipeline = tiny_pipeline("uniform", noise_levels=False)
    with torch.no_grad():  # a denoiser confident in code 7 everywhere: one step reaches its fixed point
        pipeline.denoiser.get_output_embeddings().bias[7] = 100.0
    out = pipeline(batch_size=2, num_inference_steps=20, output_type="token_ids", generator=_seeded())
    assert out.num_steps_run == 2  # the step that changed nothing ends the loop
    assert (out.token_ids == 7).all()


@pytest.mark.parametrize("corruption", ["uniform", "absorbing"])
def test_inpainting_never_changes_known_tokens(corruption):
    pipeline = tiny_pipeline(corruption)
    known_ids = torch.randint(0, 32, (3, 4, 4), generator=_seeded(5))
    token_mask = torch.zeros(4, 4, dtype=torch.bool)
    token_mask[2:] = True  # regenerate the bottom half
    checks = []

    def check(pipe, i, t, kw):
        checks.append(torch.equal(kw["token_ids"].view(3, 4, 4)[:, :2], known_ids[:, :2]))

    out = pipeline(token_ids=known_ids, token_mask=token_mask, num_inference_steps=6, generator=_seeded(),
                   output_type="token_ids", callback_on_step_end=check)  # fmt: skip
    assert all(checks) and torch.equal(out.token_ids[:, :2], known_ids[:, :2])
    assert out.token_ids.max() < 32


def test_inpainting_from_image_and_mask_image(images):
    pipeline = tiny_pipeline()
    known = pipeline.vqvae.encode_to_ids(images)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:, :] = 1.0  # white = regenerate the bottom half of the pixels -> bottom 2 token rows
    out = pipeline(image=images, mask_image=mask, num_inference_steps=4, generator=_seeded(), output_type="token_ids")
    assert torch.equal(out.token_ids[:, :2], known[:, :2])
    pil_mask = PIL.Image.fromarray((mask[0, 0].numpy() * 255).astype("uint8"))
    again = pipeline(image=images, mask_image=pil_mask, num_inference_steps=4, generator=_seeded(),
                     output_type="token_ids")  # fmt: skip
    assert torch.equal(again.token_ids, out.token_ids)


def test_save_load_gives_identical_samples(tmp_path):
    pipeline = tiny_pipeline()
    kwargs = {"batch_size": 4, "class_labels": [0, 1, 2, 0], "guidance_scale": 2.0, "num_inference_steps": 5}
    before = pipeline(generator=_seeded(), output_type="pt", **kwargs)
    pipeline.save_pretrained(tmp_path)
    assert (tmp_path / "scheduler" / "scheduler_config.json").is_file()
    assert (tmp_path / "denoiser" / "model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = DiscreteDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    after = loaded(generator=_seeded(), output_type="pt", **kwargs)
    assert torch.equal(before.token_ids, after.token_ids) and torch.equal(before.images, after.images)


def test_intermediates_and_reverse_process_exports(tmp_path):
    pipeline = tiny_pipeline()
    out = pipeline(batch_size=4, num_inference_steps=5, generator=_seeded(), return_intermediates=True)
    assert len(out.intermediates) == 5 and len(out.intermediates[0]) == 4
    assert out.intermediates[-1][0].tobytes() == out.images[0].tobytes()  # the last frame is the sample
    export_reverse_process(out.intermediates, tmp_path / "reverse.gif", tmp_path / "strip.png", num_strip_frames=3)
    gif = PIL.Image.open(tmp_path / "reverse.gif")
    assert gif.n_frames >= 5
    assert PIL.Image.open(tmp_path / "strip.png").size == (3 * 8, 4 * 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 21}, "num_inference_steps"),
        ({"class_labels": [0, 3]}, "class_labels"),
        ({"class_labels": [0]}, "class_labels"),
        ({"temperature": -1.0}, "temperature"),
        ({"output_type": "latent"}, "output_type"),
        ({"token_mask": torch.ones(4, 4, dtype=torch.bool)}, "token_ids"),
        ({"token_ids": torch.zeros(2, 4, 4, dtype=torch.long)}, "token_mask"),
        ({"token_ids": torch.full((2, 4, 4), 99), "token_mask": torch.ones(4, 4, dtype=torch.bool)}, "codebook"),
    ],
)
def test_bad_inputs_are_value_errors(kwargs, match):
    pipeline = tiny_pipeline()
    with pytest.raises(ValueError, match=match):
        pipeline(**{"batch_size": 2, **kwargs})


def test_mismatched_components_are_refused():
    pipeline = tiny_pipeline()
    other = DiscreteDiffusionScheduler(64, 70)
    with pytest.raises(ValueError, match="codes"):
        DiscreteDiffusionPipeline(vqvae=pipeline.vqvae, denoiser=pipeline.denoiser, scheduler=other)
    with pytest.raises(ValueError, match="guidance_scale"):
        tiny_pipeline(num_classes=0)(batch_size=1, guidance_scale=2.0)


def test_bf16_denoiser_forward_samples_codes_close_to_float32():
    """The bf16 autocast path (on by default on CUDA devices with bf16) runs on CPU too: valid codes, float32
    sampling, and mostly the same argmax choices as float32."""
    pipeline = tiny_pipeline()
    kwargs = {"batch_size": 4, "class_labels": [0, 1, 2, 0], "num_inference_steps": 4, "temperature": 0.0}
    full = pipeline(output_type="token_ids", bf16=False, **kwargs).token_ids
    half = pipeline(output_type="token_ids", bf16=True, **kwargs).token_ids
    assert half.shape == full.shape and half.max() < pipeline.layout.num_codes
    assert (half == full).float().mean() > 0.5


def test_guidance_runs_one_batched_forward_per_step():
    pipeline = tiny_pipeline()
    calls = []
    hook = pipeline.denoiser.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(kwargs), with_kwargs=True
    )
    pipeline(batch_size=3, class_labels=[0, 1, 2], guidance_scale=2.0, num_inference_steps=3, output_type="token_ids")
    hook.remove()
    assert len(calls) == 3 and all(call["input_ids"].shape[0] == 6 for call in calls)  # cond + uncond together
