"""PatchGAN discriminator (pix2pix, Isola et al. 2017; as used by VQGAN) that also returns its features.

The intermediate activations serve the original design's perceptual loss (feature matching), which needs no
pretrained network. GroupNorm instead of BatchNorm so that statistics are per sample, which behaves the same
under DDP and with any batch size.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


def _block(in_channels: int, out_channels: int, stride: int, norm: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.GroupNorm(min(32, out_channels // 4), out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class PatchDiscriminator(ModelMixin, ConfigMixin):
    r"""
    Convolutional PatchGAN: one real/fake logit per overlapping image patch.

    Parameters:
        in_channels (`int`, *optional*, defaults to 3): Image channels.
        base_channels (`int`, *optional*, defaults to 64): Channels of the first layer, doubled per layer (max 8x).
        num_layers (`int`, *optional*, defaults to 3): Stride-2 layers; 2 suits 28x28 images, 3 suits 256x256.

    Example:

    ```py
    >>> import torch
    >>> from hf_vqgen.models import PatchDiscriminator

    >>> disc = PatchDiscriminator(in_channels=1, base_channels=32, num_layers=2)
    >>> logits, features = disc(torch.zeros(2, 1, 28, 28))
    >>> logits.shape, len(features)
    (torch.Size([2, 1, 5, 5]), 3)
    ```
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1, got {num_layers}.")
        channels = [base_channels * min(2**i, 8) for i in range(num_layers + 1)]
        blocks = [_block(in_channels, channels[0], stride=2, norm=False)]
        blocks += [_block(channels[i - 1], channels[i], stride=2, norm=True) for i in range(1, num_layers)]
        blocks.append(_block(channels[num_layers - 1], channels[num_layers], stride=1, norm=True))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(channels[num_layers], 1, kernel_size=4, stride=1, padding=1)

    def forward(self, sample: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns patch logits (B, 1, h, w) and each block's activations (for feature matching)."""
        features = []
        hidden = sample
        for block in self.blocks:
            hidden = block(hidden)
            features.append(hidden)
        return self.head(hidden), features
