import math

import pytest
import torch

from hf_vqgen import DiscreteDiffusionScheduler


K, MASK = 32, 40


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("corruption", ["uniform", "absorbing", "mask_and_replace"])
def test_add_noise_corrupts_the_scheduled_fraction(corruption, schedule):
    scheduler = DiscreteDiffusionScheduler(K, mask_token_id=MASK, num_train_timesteps=10, corruption=corruption,
                                           schedule=schedule)  # fmt: skip
    clean = torch.randint(0, K, (4000, 16), generator=_seeded())
    for t in (0, 4, 9):
        noisy = scheduler.add_noise(clean, torch.full((4000,), t), generator=_seeded(t))
        rate = float(scheduler.corruption_rate(t))
        if corruption == "uniform":  # a random code equals the old one with probability 1/K
            expected = rate * (1 - 1 / K)
        elif corruption == "mask_and_replace":
            expected = rate * (1 - 0.1 / K)
        else:
            expected = rate
        changed = (noisy != clean).float().mean().item()
        std = math.sqrt(max(expected * (1 - expected), 1e-4) / noisy.numel())
        assert abs(changed - expected) < 6 * std + 1e-6, (t, changed, expected)
        if corruption == "uniform":
            assert noisy.max() < K  # never a special token
        if corruption == "mask_and_replace" and t == 9:
            masked = (noisy == MASK).float().mean().item()
            assert abs(masked - 0.9) < 0.01  # 90% of the corrupted become MASK, the rest random codes


def test_schedules_end_fully_corrupted_and_cosine_masks_more():
    linear = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=8, schedule="linear")
    cosine = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=8, schedule="cosine")
    assert float(linear.corruption_rate(7)) == pytest.approx(1.0)
    assert float(cosine.corruption_rate(7)) == pytest.approx(1.0)
    assert all(cosine.corruption_rate(t) > linear.corruption_rate(t) for t in range(7))


def test_add_noise_is_reproducible_with_a_generator():
    scheduler = DiscreteDiffusionScheduler(K, MASK, corruption="mask_and_replace")
    clean = torch.randint(0, K, (8, 16), generator=_seeded())
    t = torch.arange(8) * 10
    assert torch.equal(scheduler.add_noise(clean, t, _seeded(1)), scheduler.add_noise(clean, t, _seeded(1)))


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_confidence_sampling_leaves_no_mask_and_keeps_revealed_tokens(steps):
    scheduler = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=20)
    scheduler.set_timesteps(steps)
    grid = scheduler.initial_sample((6, 16))
    assert (grid == MASK).all()
    generator = _seeded()
    for t in scheduler.timesteps:
        logits = torch.randn(6, 16, K + 9, generator=generator)
        new = scheduler.step(logits, t, grid, generator=generator).prev_sample
        revealed = grid != MASK
        assert torch.equal(new[revealed], grid[revealed])  # decided tokens never change
        assert (new == MASK).sum() < (grid == MASK).sum()  # progress every step
        grid = new
    assert not (grid == MASK).any() and grid.max() < K


def test_resample_step_redraws_every_position():
    scheduler = DiscreteDiffusionScheduler(K, corruption="uniform")
    scheduler.set_timesteps(4)
    grid = scheduler.initial_sample((2, 16), generator=_seeded())
    logits = torch.full((2, 16, K), -1e4)
    logits[..., 5] = 0
    out = scheduler.step(logits, scheduler.timesteps[0], grid)
    assert (out.prev_sample == 5).all() and (out.pred_original_sample == 5).all()


def test_set_timesteps_descends_and_checks_its_argument():
    scheduler = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=100)
    scheduler.set_timesteps(8)
    assert scheduler.timesteps[0] == 99 and scheduler.timesteps[-1] == 0 and len(scheduler.timesteps) == 8
    assert (scheduler.timesteps.diff() < 0).all()
    for bad in (0, -1, 101, 2.5):
        with pytest.raises(ValueError, match="num_inference_steps"):
            scheduler.set_timesteps(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"corruption": "gaussian"}, "corruption"),
        ({"schedule": "sqrt"}, "schedule"),
        ({"sampler": "greedy"}, "sampler"),
        ({"corruption": "absorbing", "mask_token_id": None}, "mask_token_id"),
        ({"mask_token_id": 3}, "collides"),
        ({"num_train_timesteps": 0}, "num_train_timesteps"),
    ],
)
def test_bad_configs_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiscreteDiffusionScheduler(**{"num_vq_embeddings": K, "mask_token_id": MASK, **kwargs})


def test_config_round_trip(tmp_path):
    scheduler = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=50, corruption="mask_and_replace")
    scheduler.save_pretrained(tmp_path)
    assert (tmp_path / "scheduler_config.json").is_file()
    loaded = DiscreteDiffusionScheduler.from_pretrained(tmp_path)
    assert loaded.config.corruption == "mask_and_replace" and loaded.config.sampler == "confidence"
    assert loaded.config.num_train_timesteps == 50 and loaded.config.mask_token_id == MASK


def test_confidence_sampler_reveals_the_most_confident_positions_first():
    scheduler = DiscreteDiffusionScheduler(K, MASK, num_train_timesteps=10, schedule="linear", choice_temperature=0.0)
    scheduler.set_timesteps(2)  # levels 9 (all masked) then 0: rate 1.0 -> 0.1 keeps floor(16 * 0.1) = 1 masked
    grid = scheduler.initial_sample((1, 16))
    logits = torch.zeros(1, 16, K)
    logits[0, torch.arange(16), torch.arange(16)] = torch.linspace(1.0, 20.0, 16)  # position i sure of code i
    out = scheduler.step(logits, scheduler.timesteps[0], grid, temperature=0)
    assert out.prev_sample[0, 0] == MASK  # the least confident position stays masked
    assert torch.equal(out.prev_sample[0, 1:], torch.arange(1, 16))


def test_resample_starts_from_the_forward_process_limit():
    """Each corruption's sampling start is what its forward process gives at the last noise level."""
    shape = (64, 64)
    uniform = DiscreteDiffusionScheduler(K, corruption="uniform").initial_sample(shape, generator=_seeded())
    assert uniform.max() < K and len(uniform.unique()) == K  # every code, no MASK
    scheduler = DiscreteDiffusionScheduler(K, MASK, corruption="mask_and_replace", sampler="resample")
    start = scheduler.initial_sample(shape, generator=_seeded())
    limit = scheduler.add_noise(torch.zeros(shape, dtype=torch.long), torch.full((64,), 99), generator=_seeded(1))
    for grid in (start, limit):  # MASK, with replace_fraction (0.1) of random codes
        replaced = (grid != MASK).float().mean()
        assert 0.07 < replaced < 0.13 and grid[grid != MASK].max() < K
    absorbing = DiscreteDiffusionScheduler(K, MASK, corruption="absorbing", sampler="resample")
    assert (absorbing.initial_sample(shape) == MASK).all()
