"""The named datasets: one entry each, which the rest of the package asks instead of comparing names.

An entry says how to load a split, where it lives on the Hub (for cards), its image size and channels, the class
names of its `label` column, the licence section a card must carry, and how to prepare it. A new named dataset is a
loader module and one entry here (plus its recipes); a local folder or a Hub id needs no entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets

from . import emoji, fashion_mnist


@dataclass(frozen=True)
class RegisteredDataset:
    name: str
    load: Callable[[str, str | None], datasets.Dataset]  # (split, cache_dir) -> the split
    is_local: Callable[[], bool]  # its files are on this machine, prepared and checked (no per-image check needed)
    resolution: int
    num_channels: int
    class_names: tuple[str, ...]  # of the `label` column
    label_meaning: str = "class"  # what the `label` column is, in words (the demo's level name)
    hub_id: str | None = None  # cards link it
    licence_section: str = ""  # a card section crediting the images, where their licences ask for one
    prepare: str = ""  # how a user gets the data, for messages
    gallery: Callable[[], list] | None = None  # a few test images for the demo to offer (PIL), where it has some
    features: datasets.Features | None = None  # its columns, where known without the data (other label columns)

    def num_label_classes(self, column: str = "label") -> int:
        """Classes of one label column, without loading the data (`--label_columns` of a recipe)."""
        if column == "label":
            return len(self.class_names)
        if self.features is None or not isinstance(self.features.get(column), datasets.ClassLabel):
            raise ValueError(f"The {self.name} dataset has no ClassLabel column {column!r}.")
        return self.features[column].num_classes


def _emoji_licences() -> str:
    return f"## Training data and licences\n\nThe {emoji.EMOJI} images (`make emoji`) come from:\n\n{emoji.EMOJI_ATTRIBUTION}\n\n"


DATASETS: dict[str, RegisteredDataset] = {
    fashion_mnist.FASHION_MNIST: RegisteredDataset(
        name=fashion_mnist.FASHION_MNIST,
        load=fashion_mnist.load_fashion_mnist,
        is_local=fashion_mnist.has_local_fashion_mnist,
        resolution=28,
        num_channels=1,
        class_names=fashion_mnist.FASHION_MNIST_CLASSES,
        hub_id=fashion_mnist.FASHION_MNIST_HUB_ID,
        prepare="`make fashion-mnist` (Debian's dataset-fashion-mnist), else the Hub copy is read",
        gallery=fashion_mnist.fashion_mnist_gallery,
    ),
    emoji.EMOJI: RegisteredDataset(
        name=emoji.EMOJI,
        load=lambda split, cache_dir=None: emoji.load_emoji(split),
        is_local=lambda: True,  # load_emoji refuses a folder that is not completely prepared
        resolution=emoji.EMOJI_RESOLUTION,
        num_channels=3,
        class_names=emoji.EMOJI_CATEGORIES,
        label_meaning="category",
        features=emoji.EMOJI_FEATURES,
        licence_section=_emoji_licences(),
        prepare="`make emoji` (npm packages, rendered once)",
    ),
}
