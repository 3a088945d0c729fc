"""Sampling settings saved with a pipeline (like transformers' `generation_config`) and pipelines shared between
threads."""

import threading

import pytest
import torch

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline

from .test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion
from .test_pipeline_vqgen import tiny_pipeline as tiny_ar


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "build, loader, defaults",
    [
        (tiny_ar, VQGenPipeline, {"temperature": 0.7, "top_k": 5, "top_p": 0.9, "guidance_scale": 2.0}),
        (tiny_diffusion, DiscreteDiffusionPipeline, {"temperature": 0.5, "num_inference_steps": 3, "top_k": 4}),
    ],
)
def test_saved_defaults_are_what_a_bare_call_uses_after_a_round_trip(tmp_path, build, loader, defaults):
    pipeline = build()
    kwargs = {"batch_size": 3, "class_labels": [0, 1, 2], "output_type": "token_ids"}
    explicit = pipeline(generator=_seeded(), **kwargs, **defaults).token_ids
    builtin = pipeline(generator=_seeded(), **kwargs).token_ids
    pipeline.set_sampling_defaults(**defaults)
    pipeline.save_pretrained(tmp_path)
    loaded = loader.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.sampling_defaults == {**loaded.builtin_sampling_defaults, **defaults}
    assert torch.equal(loaded(generator=_seeded(), **kwargs).token_ids, explicit)
    assert not torch.equal(explicit, builtin)  # the defaults did change what a bare call samples
    # a call's own value wins over the saved default; 0 switches top-k off
    overridden = loaded(generator=_seeded(), temperature=1.0, top_k=0, **kwargs).token_ids
    assert not torch.equal(overridden, explicit)


def test_unknown_or_invalid_defaults_are_refused():
    pipeline = tiny_ar()
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipeline.set_sampling_defaults(num_inference_steps=8)  # a diffusion setting on an AR pipeline
    with pytest.raises(ValueError, match="top_p"):
        pipeline.set_sampling_defaults(top_p=1.5)
    with pytest.raises(ValueError, match="num_inference_steps"):
        tiny_diffusion().set_sampling_defaults(num_inference_steps=0)
    assert "sampling_defaults" not in pipeline.prior.config.to_dict()  # nothing half-stored


@pytest.mark.parametrize(
    "build, settings",
    [
        (tiny_ar, [{"temperature": 0.5}, {"temperature": 1.5, "top_k": 3}]),
        (tiny_diffusion, [{"num_inference_steps": 3}, {"num_inference_steps": 7}]),
    ],
)
def test_a_pipeline_shared_by_two_threads_gives_what_sequential_calls_give(build, settings):
    pipeline = build()
    kwargs = {"batch_size": 2, "class_labels": [0, 1], "output_type": "token_ids"}
    expected = [pipeline(generator=_seeded(i), **kwargs, **s).token_ids for i, s in enumerate(settings)]
    for _ in range(5):
        results, errors = [None, None], []

        def work(i, results=results, errors=errors):
            try:
                results[i] = pipeline(generator=_seeded(i), **kwargs, **settings[i]).token_ids
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert all(torch.equal(got, want) for got, want in zip(results, expected))


def test_a_linear_guidance_schedule_ramps_from_one_to_the_scale():
    from hf_vqgen.pipelines.pipeline_vqgen import scheduled_guidance

    assert [scheduled_guidance(3.0, "linear", i, 4) for i in range(4)] == [1.5, 2.0, 2.5, 3.0]
    assert [scheduled_guidance(3.0, "linear_decreasing", i, 4) for i in range(4)] == [3.0, 2.5, 2.0, 1.5]
    assert scheduled_guidance(3.0, "constant", 0, 4) == 3.0
    pipeline = tiny_ar()
    kwargs = {
        "batch_size": 3,
        "class_labels": [0, 1, 2],
        "output_type": "token_ids",
        "guidance_scale": 200.0,
    }  # large: a random prior barely tells classes apart
    constant = pipeline(generator=_seeded(), **kwargs).token_ids
    linear = pipeline(generator=_seeded(), guidance_schedule="linear", **kwargs).token_ids
    decreasing = pipeline(generator=_seeded(), guidance_schedule="linear_decreasing", **kwargs).token_ids
    assert not torch.equal(constant, linear) and not torch.equal(linear, decreasing)
    # a schedule whose first step is unguided (scale 1) still samples one row per image
    assert pipeline(
        generator=_seeded(), guidance_schedule="linear", **{**kwargs, "guidance_scale": 1.0 + 1e-9}
    ).token_ids.shape == (3, 4, 4)
    with pytest.raises(ValueError, match="guidance_schedule"):
        pipeline(generator=_seeded(), guidance_schedule="cosine", **kwargs)
    pipeline.set_sampling_defaults(guidance_schedule="linear")
    assert torch.equal(pipeline(generator=_seeded(), **kwargs).token_ids, linear)
