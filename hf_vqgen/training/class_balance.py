"""Class-balanced sampling for long-tailed labels (emoji: People & Body is 60% of the images)."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ClassBalancedSampler(torch.utils.data.Sampler[int]):
    r"""
    Draws `len(labels)` examples an epoch, with replacement, each with probability proportional to
    `count(its class) ** -power`: 0 keeps the data's own mix, 1 makes every class equally frequent, 0.5 is
    square-root balancing. Epoch `e` is drawn from a generator seeded with `seed + e`, so a resumed run (which sets
    the epoch through Accelerate's `set_epoch`) sees the same batches as an uninterrupted one.
    """

    def __init__(self, labels: torch.Tensor, power: float, seed: int = 0):
        if not 0 <= power <= 1:
            raise ValueError(f"`power` must be in [0, 1], got {power}.")
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.ndim != 1 or labels.numel() == 0 or int(labels.min()) < 0:
            raise ValueError("`labels` must be a non-empty 1-D tensor of class ids >= 0.")
        counts = torch.bincount(labels).double()
        self.weights = counts[labels] ** -power
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator).tolist()


def class_shares(labels: torch.Tensor, power: float) -> torch.Tensor:
    """The share of draws each class gets under `ClassBalancedSampler(labels, power)` (for logs and reports)."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long)).double()
    mass = counts ** (1 - power) * (counts > 0)
    return mass / mass.sum()
