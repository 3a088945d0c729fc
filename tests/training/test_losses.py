import pytest
import torch

from hf_vqgen.models import PatchDiscriminator
from hf_vqgen.training import VQGANLoss, VQGANLossConfig
from hf_vqgen.training.losses import adaptive_weight, hinge_discriminator_loss, reconstruction_loss


def test_hinge_loss_is_zero_for_confident_discriminator():
    assert hinge_discriminator_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0
    assert hinge_discriminator_loss(torch.zeros(4), torch.zeros(4)) == 1.0


def test_adaptive_weight_is_gradient_norm_ratio():
    layer = torch.nn.Parameter(torch.ones(3))
    nll = (2.0 * layer).sum()
    gan = (0.5 * layer).sum()
    assert adaptive_weight(nll, gan, layer) == pytest.approx(4.0, rel=1e-3)


def test_reconstruction_loss_kinds():
    a, b = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    assert reconstruction_loss(a, b, "l1") == 0.5 and reconstruction_loss(a, b, "l2") == 0.25
    with pytest.raises(ValueError, match="kind"):
        reconstruction_loss(a, b, "l3")


def test_generator_loss_terms_and_disc_start():
    torch.manual_seed(0)
    disc = PatchDiscriminator(in_channels=1, base_channels=8, num_layers=2)
    decoder_layer = torch.nn.Conv2d(1, 1, 1)
    real = torch.rand(2, 1, 16, 16) * 2 - 1
    fake = decoder_layer(torch.rand(2, 1, 16, 16))
    criterion = VQGANLoss(VQGANLossConfig(feature_matching_weight=1.0, disc_weight=0.5, disc_start=10))
    _, early = criterion.generator_loss(real, fake, torch.tensor(0.1), disc, step=0, last_layer=decoder_layer.weight)
    assert "feature_matching" in early and "gan_loss" not in early
    loss, late = criterion.generator_loss(
        real, fake, torch.tensor(0.1), disc, step=10, last_layer=decoder_layer.weight
    )
    assert {"gan_loss", "adaptive_weight", "rec_loss", "commit_loss"} <= late.keys()
    loss.backward()
    assert decoder_layer.weight.grad is not None
    disc_loss, logs = criterion.discriminator_loss(real, fake, disc)
    assert disc_loss >= 0 and "logits_real" in logs


@pytest.mark.parametrize("kwargs", [{"reconstruction": "huber"}, {"disc_weight": -1.0}])
def test_bad_loss_config(kwargs):
    with pytest.raises(ValueError):
        VQGANLossConfig(**kwargs)


def test_lpips_weight_needs_a_network():
    with pytest.raises(ValueError, match="lpips"):
        VQGANLoss(VQGANLossConfig(lpips_weight=1.0))


def test_classifier_perceptual_loss_is_zero_on_equal_images_and_trains_the_reconstruction(tmp_path):
    from hf_vqgen.models import ShapeClassifier
    from hf_vqgen.training.losses import ClassifierPerceptualLoss, load_perceptual_network

    ShapeClassifier(in_channels=3, sample_size=32, head_names=["identity"], head_sizes=[5]).save_pretrained(tmp_path)
    loss = load_perceptual_network(str(tmp_path))
    assert isinstance(loss, ClassifierPerceptualLoss) and not any(p.requires_grad for p in loss.parameters())
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(loss(target.clone(), target)) == pytest.approx(0.0, abs=1e-6)
    reconstruction = (target + 0.3 * torch.randn_like(target)).requires_grad_(True)
    value = loss(reconstruction, target)
    value.backward()
    assert float(value) > 0 and reconstruction.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="3-channel"):
        loss(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
