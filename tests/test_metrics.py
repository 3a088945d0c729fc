import math
import types

import pytest
import torch

from hf_vqgen.evaluation import sample_images
from hf_vqgen.evaluation.metrics import (
    classifier_score,
    codebook_statistics,
    frechet_distance,
    kernel_distance,
    precision_recall,
    psnr,
    ssim,
)


def _gaussian_features(n=600, dim=8, seed=0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


# image metrics


def test_psnr_known_values():
    reference = torch.zeros(2, 1, 4, 4)
    # an error of 0.2 on the [-1, 1] scale is 0.1 on [0, 1]: 20 dB
    assert torch.allclose(psnr(reference + 0.2, reference), torch.full((2,), 20.0))
    assert math.isinf(float(psnr(reference, reference)[0]))


def test_ssim_identity_and_degradation():
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(ssim(images, images), torch.ones(3), atol=1e-6)
    noisy = (images + 0.3 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    very_noisy = (images + 1.0 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    assert (ssim(very_noisy, images) < ssim(noisy, images)).all() and (ssim(noisy, images) < 1).all()


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize(
    "images, match",
    [
        (torch.zeros(2, 8, 8), "shape"),
        (torch.zeros(0, 1, 8, 8), "non-empty"),
        (torch.full((1, 1, 8, 8), float("nan")), "NaN"),
    ],
)
def test_image_metrics_bad_inputs(metric, images, match):
    with pytest.raises(ValueError, match=match):
        metric(images, images)


def test_image_metrics_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 16))


# distribution metrics


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise():
    reference = _gaussian_features()
    assert abs(frechet_distance(reference, reference)) < 1e-6
    distances = [
        frechet_distance(reference + level * _gaussian_features(seed=1), reference) for level in (0.1, 0.3, 1.0, 3.0)
    ]
    assert all(a < b for a, b in zip(distances, distances[1:])), distances


def test_fid_matches_closed_form_for_shifted_gaussians():
    # same covariance, means 2 apart on one axis: FID = 4 (up to sampling error)
    a, b = _gaussian_features(20000, 2, seed=0), _gaussian_features(20000, 2, seed=1)
    b[:, 0] += 2
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.1)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    reference, other = _gaussian_features(seed=0), _gaussian_features(seed=1)
    same_mean, _ = kernel_distance(other, reference, subset_size=300, num_subsets=20)
    shifted_mean, _ = kernel_distance(other + 1.0, reference, subset_size=300, num_subsets=20)
    assert abs(same_mean) < 0.05 < shifted_mean


def test_precision_recall_synthetic_cases():
    reference = _gaussian_features(500)
    copy = precision_recall(reference.clone(), reference)
    assert copy["precision"] == 1.0 and copy["recall"] == 1.0
    fresh = precision_recall(_gaussian_features(500, seed=3), reference)
    assert fresh["precision"] > 0.7 and fresh["recall"] > 0.7
    repeated = precision_recall(reference[:1].repeat(500, 1), reference)
    assert repeated["precision"] == 1.0 and repeated["recall"] < 0.02  # mode collapse: perfect precision, no recall
    far = precision_recall(_gaussian_features(500, seed=4) + 10, reference)
    assert far["precision"] == 0.0 and far["recall"] == 0.0


def test_classifier_score_bounds():
    confident_diverse = torch.eye(10).repeat(10, 1) * 50
    assert classifier_score(confident_diverse, num_splits=1)[0] == pytest.approx(10.0, rel=1e-3)
    one_class = torch.zeros(100, 10)
    one_class[:, 3] = 50
    assert classifier_score(one_class, num_splits=1)[0] == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("metric", [frechet_distance, kernel_distance, precision_recall])
@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(10), "shape"),
        (torch.zeros(0, 8), "shape"),
        (torch.full((20, 8), float("nan")), "NaN"),
        (torch.zeros(20, 5), "dimension"),
    ],
)
def test_distribution_metrics_bad_inputs(metric, bad, match):
    with pytest.raises(ValueError, match=match):
        metric(bad, _gaussian_features(20))


# tokenizer metrics


def test_codebook_statistics():
    uniform = codebook_statistics(torch.tensor([5, 5, 5, 5]))
    assert uniform["codebook_usage"] == 1.0 and uniform["perplexity"] == pytest.approx(4.0)
    half = codebook_statistics(torch.tensor([7, 0, 7, 0]))
    assert half["codebook_usage"] == 0.5 and half["perplexity"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        codebook_statistics(torch.zeros(4))


def test_condition_accuracy_splits_a_combined_class_into_its_columns():
    from hf_vqgen.evaluation import condition_accuracy

    sizes = {"label": 2, "style": 3}  # class = label * 3 + style
    labels = torch.tensor([0, 4, 5, 2])
    predicted = torch.tensor([0, 3, 2, 2])  # right; right label, wrong style; wrong label, right style; right
    figures = condition_accuracy(torch.nn.functional.one_hot(predicted, 6).float(), labels, sizes)
    assert figures == {"accuracy": 0.5, "accuracy_style": 0.75, "accuracy_label": 0.75}
    assert condition_accuracy(torch.eye(6), torch.arange(6), {"label": 6}) == {"accuracy": 1.0}
    with pytest.raises(ValueError, match="logits"):
        condition_accuracy(torch.eye(5), torch.arange(5), sizes)


class _RecordingPipeline:
    """Just enough of a pipeline for `sample_images`: records the classes each call asked for."""

    device = torch.device("cpu")
    layout = types.SimpleNamespace(num_classes=3)

    def __init__(self):
        self.asked = []

    def set_progress_bar_config(self, **kwargs):
        pass

    def __call__(self, count, class_labels=None, generator=None, output_type="pt"):
        self.asked.extend(class_labels)
        return types.SimpleNamespace(images=torch.zeros(count, 1, 2, 2))


def test_sample_images_cycles_classes_or_asks_for_the_given_ones():
    pipeline = _RecordingPipeline()
    sample_images(pipeline, 5, batch_size=2, seed=0)
    assert pipeline.asked == [0, 1, 2, 0, 1]
    pipeline = _RecordingPipeline()
    images, _ = sample_images(pipeline, 5, batch_size=2, seed=0, class_labels=[2, 2, 0, 1, 2])
    assert pipeline.asked == [2, 2, 0, 1, 2] and images.shape == (5, 1, 2, 2)
    with pytest.raises(ValueError, match="one class per sample"):
        sample_images(pipeline, 5, batch_size=2, seed=0, class_labels=[1, 2])
