"""Tokenizer training losses: reconstruction, the discriminator feature-matching perceptual loss of the original
design, optional LPIPS from local weights, and VQGAN's hinge PatchGAN loss with its adaptive weight."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


RECONSTRUCTION_LOSSES = ("l1", "l2")


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(reconstruction, target)
    if kind == "l2":
        return F.mse_loss(reconstruction, target)
    raise ValueError(f"`kind` must be one of {RECONSTRUCTION_LOSSES}, got {kind!r}.")


def feature_matching_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 distance between discriminator activations of reconstructions and (fixed) real images."""
    return sum(F.l1_loss(fake, real.detach()) for fake, real in zip(fake_features, real_features)) / len(fake_features)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017) as in VQGAN: mean(relu(1 - D(x))) + mean(relu(1 + D(G(x)))), halved."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def adaptive_weight(nll_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """VQGAN's balance (Esser et al. 2021, eq. 7): ||grad nll|| / (||grad gan|| + 1e-4) at the decoder's last layer,
    clamped to [0, 1e4] and detached."""
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    return (nll_grad.norm() / (gan_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()


class LPIPSFromFile(nn.Module):
    """LPIPS distance from a local TorchScript file (`f(x, y) -> (B, 1, 1, 1)` on [-1, 1] images), e.g. exported
    with `torch.jit.script(lpips.LPIPS(net="vgg")).save(path)`. Nothing is downloaded; the network stays frozen."""

    def __init__(self, path: str):
        super().__init__()
        self.net = torch.jit.load(path, map_location="cpu").eval()
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if reconstruction.shape[1] == 1:  # LPIPS networks expect RGB
            reconstruction, target = reconstruction.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return self.net(reconstruction, target).mean()


class ClassifierPerceptualLoss(nn.Module):
    """A perceptual distance in the feature space of a metric classifier trained on the dataset itself (e.g.
    `benchmarks/assets/emoji_shape_classifier`): the activations after each of its stages, each unit-normalised over
    channels, compared by mean squared difference (LPIPS without its learned weights, Zhang et al. 2018). No download;
    the network stays frozen. For a `ShapeClassifier` or `ImageClassifier` folder."""

    def __init__(self, path: str):
        super().__init__()
        from ..models import ImageClassifier, ShapeClassifier

        name = ImageClassifier.load_config(path).get("_class_name")
        classes = {"ImageClassifier": ImageClassifier, "ShapeClassifier": ShapeClassifier}
        if name not in classes:
            raise ValueError(f"--lpips_model_path {path} holds a {name!r}, not a metric classifier {sorted(classes)}.")
        network = classes[name].from_pretrained(path).eval()
        self.stages = network.stages if name == "ShapeClassifier" else network.blocks
        self.in_channels = network.config.in_channels
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if reconstruction.shape[1] != self.in_channels:
            raise ValueError(
                f"The perceptual network reads {self.in_channels}-channel images, got {reconstruction.shape[1]}."
            )
        self.stages.eval()  # batch norm in inference mode even while the tokenizer trains
        distance, x, y = 0.0, reconstruction, target.detach()
        for stage in self.stages:
            x, y = stage(x), stage(y)
            distance = distance + (F.normalize(x, dim=1) - F.normalize(y, dim=1)).pow(2).sum(dim=1).mean()
        return distance / len(self.stages)


def load_perceptual_network(path: str) -> nn.Module:
    """`--lpips_model_path`: a TorchScript LPIPS file, or a metric classifier's folder (`ClassifierPerceptualLoss`)."""
    from pathlib import Path

    return ClassifierPerceptualLoss(path) if Path(path).is_dir() else LPIPSFromFile(path)


@dataclass
class VQGANLossConfig:
    reconstruction: str = "l1"
    codebook_weight: float = 1.0
    feature_matching_weight: float = 0.0
    lpips_weight: float = 0.0
    disc_weight: float = 0.0
    disc_start: int = 0

    def __post_init__(self):
        if self.reconstruction not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"`reconstruction` must be one of {RECONSTRUCTION_LOSSES}, got {self.reconstruction!r}.")
        for name in ("codebook_weight", "feature_matching_weight", "lpips_weight", "disc_weight", "disc_start"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")

    @property
    def uses_discriminator(self) -> bool:
        return self.feature_matching_weight > 0 or self.disc_weight > 0

    def discriminator_trains_at(self, step: int) -> bool:
        # feature matching needs a discriminator that learns from the start; the adversarial term only from disc_start
        return self.feature_matching_weight > 0 or (self.disc_weight > 0 and step >= self.disc_start)


class VQGANLoss(nn.Module):
    """Generator and discriminator objectives. Each calls the discriminator once on `cat([real, fake])`, so that
    a DDP-wrapped discriminator sees exactly one forward per backward."""

    def __init__(self, config: VQGANLossConfig, lpips: nn.Module | None = None):
        super().__init__()
        if config.lpips_weight > 0 and lpips is None:
            raise ValueError("`lpips_weight` > 0 needs an LPIPS network (`lpips`), loaded from local weights.")
        self.config = config
        self.lpips = lpips

    def generator_loss(self, real, reconstruction, commit_loss, discriminator, step, last_layer):
        """Returns the generator (encoder + decoder + codebook) loss and a dict of its terms for logging."""
        config = self.config
        nll = reconstruction_loss(reconstruction, real, config.reconstruction)
        logs = {"rec_loss": nll.detach(), "commit_loss": commit_loss.detach()}
        if self.lpips is not None and config.lpips_weight > 0:
            lpips = self.lpips(reconstruction, real)
            nll = nll + config.lpips_weight * lpips
            logs["lpips"] = lpips.detach()
        loss = nll + config.codebook_weight * commit_loss
        if not config.uses_discriminator:
            return loss, logs

        logits, features = discriminator(torch.cat([real, reconstruction]))
        batch = real.shape[0]
        if config.feature_matching_weight > 0:
            matching = feature_matching_loss([f[batch:] for f in features], [f[:batch] for f in features])
            loss = loss + config.feature_matching_weight * matching
            logs["feature_matching"] = matching.detach()
        if config.disc_weight > 0 and step >= config.disc_start:
            gan = -logits[batch:].mean()
            weight = adaptive_weight(nll, gan, last_layer) if torch.is_grad_enabled() else torch.tensor(1.0)
            loss = loss + config.disc_weight * weight * gan
            logs.update(gan_loss=gan.detach(), adaptive_weight=weight)
        else:
            loss = loss + 0.0 * logits.sum()  # keep every discriminator parameter in the graph for DDP
        return loss, logs

    def discriminator_loss(self, real, reconstruction, discriminator):
        logits, _ = discriminator(torch.cat([real, reconstruction.detach()]))
        batch = real.shape[0]
        loss = hinge_discriminator_loss(logits[:batch], logits[batch:])
        return loss, {"disc_loss": loss.detach(), "logits_real": logits[:batch].mean().detach()}
