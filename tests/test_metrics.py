import math

import pytest
import torch

from hf_vqgen.metrics import codebook_statistics, psnr


def test_psnr_known_values():
    reference = torch.zeros(2, 1, 4, 4)
    # an error of 0.2 on the [-1, 1] scale is 0.1 on [0, 1]: 20 dB
    assert torch.allclose(psnr(reference + 0.2, reference), torch.full((2,), 20.0))
    assert math.isinf(float(psnr(reference, reference)[0]))


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.zeros(2, 4, 4), "shape"),
        (torch.zeros(0, 1, 4, 4), "non-empty"),
        (torch.full((1, 1, 4, 4), float("nan")), "NaN"),
    ],
)
def test_psnr_bad_inputs(images, match):
    with pytest.raises(ValueError, match=match):
        psnr(images, images)


def test_codebook_statistics():
    uniform = codebook_statistics(torch.tensor([5, 5, 5, 5]))
    assert uniform["codebook_usage"] == 1.0 and uniform["perplexity"] == pytest.approx(4.0)
    half = codebook_statistics(torch.tensor([7, 0, 7, 0]))
    assert half["codebook_usage"] == 0.5 and half["perplexity"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        codebook_statistics(torch.zeros(4))
