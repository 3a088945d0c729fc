import pytest
import torch

from hf_vqgen.training.class_balance import ClassBalancedSampler, class_shares


LABELS = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)


@pytest.mark.parametrize(("power", "expected"), [(0.0, [0.9, 0.09, 0.01]), (1.0, [1 / 3] * 3), (0.5, [90**0.5, 3, 1])])
def test_class_shares_follow_the_power(power, expected):
    expected = torch.tensor(expected, dtype=torch.float64)
    assert torch.allclose(class_shares(LABELS, power), expected / expected.sum())


def test_sampler_draws_classes_in_those_shares_and_repeats_each_epoch():
    sampler = ClassBalancedSampler(LABELS.repeat(100), power=1.0, seed=3)
    first = list(sampler)
    drawn = torch.bincount(LABELS.repeat(100)[first], minlength=3).double() / len(first)
    assert len(first) == 10_000 and torch.allclose(drawn, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)
    assert list(sampler) == first  # same epoch, same order (a resumed run relies on it)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_power_zero_keeps_every_example_equally_likely():
    sampler = ClassBalancedSampler(LABELS, power=0.0)
    assert torch.equal(sampler.weights, torch.ones(100, dtype=torch.float64))


@pytest.mark.parametrize(("labels", "power"), [(LABELS, 1.5), (LABELS, -0.1), (torch.tensor([0, -1]), 1.0)])
def test_bad_arguments_are_refused(labels, power):
    with pytest.raises(ValueError, match="power|labels"):
        ClassBalancedSampler(labels, power)
