"""A small image classifier whose penultimate layer is the feature space of the dataset-specific metrics.

Inception features need downloaded weights and were trained on ImageNet photographs; for 28x28 grayscale
Fashion-MNIST a classifier trained on the dataset itself gives a feature space that knows its classes (the
"FID with a domain classifier" practice of e.g. the MNIST/Fashion-MNIST GAN literature). Train one with
`examples/train_feature_extractor.py`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ImageClassifier(ModelMixin, ConfigMixin):
    r"""
    VGG-style CNN: two conv blocks, global average pooling, a `feature_dim` embedding, then class logits.

    Parameters:
        in_channels (`int`, *optional*, defaults to 1): Image channels.
        num_classes (`int`, *optional*, defaults to 10): Number of classes.
        base_channels (`int`, *optional*, defaults to 32): Channels of the first block (doubled in the second).
        feature_dim (`int`, *optional*, defaults to 128): Dimension of the embedding used as metric features.
        dropout (`float`, *optional*, defaults to 0.3): Dropout before the logits (training only).

    Example:

    ```py
    >>> import torch
    >>> from hf_vqgen.models import ImageClassifier

    >>> classifier = ImageClassifier().eval()
    >>> features, logits = classifier(torch.zeros(2, 1, 28, 28))
    >>> features.shape, logits.shape
    (torch.Size([2, 128]), torch.Size([2, 10]))
    ```
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        base_channels: int = 32,
        feature_dim: int = 128,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.blocks = nn.Sequential(
            _conv_block(in_channels, base_channels), _conv_block(base_channels, 2 * base_channels)
        )
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * base_channels, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [-1, 1] -> features (B, feature_dim) and class logits (B, num_classes)."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.in_channels:
            raise ValueError(
                f"`pixel_values` must be (B, {self.config.in_channels}, H, W), got {tuple(pixel_values.shape)}."
            )
        hidden = self.blocks(pixel_values).mean(dim=(2, 3))  # global average pooling: any resolution works
        features = self.embed(hidden)
        return features, self.head(features)
