"""A classifier whose feature space sees shape: the gauge for generated images whose identity matters (emoji).

`ImageClassifier` pools globally and learns a few coarse classes, so its features barely change when an image's
layout is broken: chimeras of two real images and patch-shuffled ones score close to real there. This network
(a) learns to tell individual identities apart (thousands of classes, e.g. each emoji's code point in every style)
next to coarse heads (category, style), and (b) keeps layout in its embedding: the last feature map (4x4 for 64x64
inputs) is flattened, not averaged, before the embedding layer, so moving a part of the image moves the features.
Train one with `examples/train_feature_extractor.py --identity_column ...`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


def _stage(in_channels: int, out_channels: int, num_convs: int) -> nn.Sequential:
    layers = []
    for index in range(num_convs):
        layers += [
            nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class ShapeClassifier(ModelMixin, ConfigMixin):
    r"""
    VGG-style CNN with several classification heads over one layout-keeping embedding.

    Parameters:
        in_channels (`int`, *optional*, defaults to 3): Image channels.
        sample_size (`int`, *optional*, defaults to 64): Input height and width (the flattened map depends on it).
        head_names (`list[str]`, *optional*, defaults to `["identity"]`): Names of the heads; the first one's logits
            are what `forward` returns (the primary task).
        head_sizes (`list[int]`, *optional*, defaults to `[10]`): Classes of each head.
        block_out_channels (`list[int]`, *optional*, defaults to `[32, 64, 128, 128]`): Channels of each stage; each
            stage halves the resolution.
        map_channels (`int`, *optional*, defaults to 32): Channels of the last map once reduced by a 1x1 conv, before
            it is flattened (feature map cells x `map_channels` inputs to the embedding).
        feature_dim (`int`, *optional*, defaults to 256): Dimension of the embedding used as metric features.
        dropout (`float`, *optional*, defaults to 0.3): Dropout before the heads (training only).

    Example:

    ```py
    >>> import torch
    >>> from hf_vqgen.models import ShapeClassifier

    >>> classifier = ShapeClassifier(sample_size=32, head_names=["identity", "category"], head_sizes=[50, 4]).eval()
    >>> features, logits = classifier(torch.zeros(2, 3, 32, 32))
    >>> features.shape, logits.shape, classifier.head_logits(torch.zeros(2, 3, 32, 32))["category"].shape
    (torch.Size([2, 256]), torch.Size([2, 50]), torch.Size([2, 4]))
    ```
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        sample_size: int = 64,
        head_names: list[str] = ("identity",),
        head_sizes: list[int] = (10,),
        block_out_channels: list[int] = (32, 64, 128, 128),
        map_channels: int = 32,
        feature_dim: int = 256,
        dropout: float = 0.3,
    ):
        super().__init__()
        if len(head_names) != len(head_sizes) or not head_names:
            raise ValueError(f"`head_names` {list(head_names)} and `head_sizes` {list(head_sizes)} must pair up.")
        map_size = sample_size // 2 ** len(block_out_channels)
        if map_size < 1 or sample_size % 2 ** len(block_out_channels):
            raise ValueError(
                f"`sample_size` {sample_size} must be divisible by 2^{len(block_out_channels)} (one halving a stage)."
            )
        channels = [in_channels, *block_out_channels]
        # two convs where the map is large enough to hold parts, one at the coarsest stage
        self.stages = nn.Sequential(
            *[
                _stage(channels[i], channels[i + 1], 2 if i < len(block_out_channels) - 1 else 1)
                for i in range(len(block_out_channels))
            ]
        )
        self.reduce = nn.Sequential(nn.Conv2d(channels[-1], map_channels, 1), nn.ReLU(inplace=True))
        self.embed = nn.Sequential(
            nn.Flatten(),  # no pooling: each cell of the map keeps its own weights, so layout stays in the features
            nn.Linear(map_channels * map_size * map_size, feature_dim),
            nn.BatchNorm1d(feature_dim),
            nn.ReLU(),
        )
        self.head_dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, size) for name, size in zip(head_names, head_sizes)})

    def _check(self, pixel_values: torch.Tensor) -> None:
        size, channels = self.config.sample_size, self.config.in_channels
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (channels, size, size):
            raise ValueError(
                f"`pixel_values` must be (B, {channels}, {size}, {size}), got {tuple(pixel_values.shape)}."
            )

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> embedding (B, feature_dim)."""
        self._check(pixel_values)
        return self.embed(self.reduce(self.stages(pixel_values)))

    def head_logits(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images -> {head name: logits (B, head size)}."""
        hidden = self.head_dropout(self.features(pixel_values))
        return {name: head(hidden) for name, head in self.heads.items()}

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [-1, 1] -> features (B, feature_dim) and the first head's logits."""
        features = self.features(pixel_values)
        return features, self.heads[self.config.head_names[0]](self.head_dropout(features))
