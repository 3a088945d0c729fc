import pytest
import torch

from hf_vqgen.evaluation import features as feature_extractors
from hf_vqgen.evaluation import score_images
from hf_vqgen.evaluation.features import (
    ClassifierFeatureExtractor,
    InceptionFeatureExtractor,
    extract_features,
    load_feature_extractor,
    reference_features,
)
from hf_vqgen.models import ImageClassifier


@pytest.fixture
def extractor(tmp_path, monkeypatch) -> ClassifierFeatureExtractor:
    monkeypatch.setenv("HF_VQGEN_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    return ClassifierFeatureExtractor(ImageClassifier(base_channels=4, feature_dim=8))


def test_extract_features_shapes_and_batching(extractor):
    images = torch.rand(7, 1, 28, 28) * 2 - 1
    features, logits = extract_features(extractor, images, batch_size=3)
    assert features.shape == (7, 8) and logits.shape == (7, 10)
    whole, _ = extract_features(extractor, images, batch_size=100)
    assert torch.allclose(features, whole, atol=1e-5)  # eval mode: batch composition does not matter


@pytest.mark.parametrize(
    "images, match", [(torch.zeros(0, 1, 28, 28), "non-empty"), (torch.full((2, 1, 28, 28), float("nan")), "NaN")]
)
def test_extract_features_bad_inputs(extractor, images, match):
    with pytest.raises(ValueError, match=match):
        extract_features(extractor, images)


def test_reference_features_are_cached(extractor, fake_fashion_mnist, monkeypatch):
    first, first_logits = reference_features(extractor, "fashion_mnist", "test", 28, 1)
    assert first.shape == (24, 8) and first_logits.shape == (24, 10)
    assert len(list(feature_extractors.cache_dir().glob("*.safetensors"))) == 1

    def no_dataset(*args, **kwargs):
        raise AssertionError("the cached features should have been used")

    monkeypatch.setattr(feature_extractors, "load_split_images", no_dataset)
    second, _ = reference_features(extractor, "fashion_mnist", "test", 28, 1)
    assert torch.equal(first, second)


def test_extractor_identity_follows_weights():
    torch.manual_seed(0)
    a = ClassifierFeatureExtractor(ImageClassifier(base_channels=4, feature_dim=8))
    b = ClassifierFeatureExtractor(ImageClassifier(base_channels=4, feature_dim=8))
    assert a.identity != b.identity and a.identity.startswith("classifier-")


def test_score_images_against_a_split(extractor, fake_fashion_mnist):
    from hf_vqgen.evaluation.features import load_split_images

    test_images = load_split_images("fashion_mnist", "test", 28, 1)
    same = score_images(test_images, extractor, "fashion_mnist", "test")
    assert abs(same["fid"]) < 1e-4 and same["precision"] == 1.0 and same["recall"] == 1.0
    noise = score_images(torch.rand(24, 1, 28, 28) * 2 - 1, extractor, "fashion_mnist", "test")
    assert noise["fid"] > same["fid"] and {"kid", "classifier_score"} <= noise.keys()


def test_load_feature_extractor_rejects_unknown(tmp_path):
    with pytest.raises(ValueError, match="feature_extractor"):
        load_feature_extractor(tmp_path / "missing")


def test_inception_without_local_weights_is_a_clear_error(tmp_path):
    with pytest.raises((ImportError, FileNotFoundError), match="torch-fidelity|never downloaded"):
        InceptionFeatureExtractor(weights_path=tmp_path / "absent.pth")
