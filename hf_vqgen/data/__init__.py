"""Everything about data: where images come from (registered datasets, Hub ids, local folders, streams), the one
image rule every image goes through (`pixels`, `image_modes`), and token datasets (encoded, sharded, checked).

    registry.py       the named datasets, one entry each (a new dataset is a loader module plus an entry here)
    fashion_mnist.py  emoji.py   the registered datasets' loaders (emoji also builds its data: `make emoji`)
    image_folder.py   a user's local folder, scanned and checked
    streaming.py      datasets too large for one disk, streamed and split across processes
    images.py         load_image_dataset: any source -> `datasets.Dataset` with `image` (and `label`)
    pixels.py         PixelTransform: any image -> a model's pixels (imports no data-loading stack: inference uses it)
    image_modes.py    any PIL mode -> "L" or "RGB"
    tokens.py         token datasets and the tokenizer identity they carry
    token_shards.py   token shards written while encoding streams

Names are imported on first use, so `hf_vqgen.data.pixels` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports


_EXPORTS = {
    "DATASETS": ".registry",
    "RegisteredDataset": ".registry",
    "load_image_dataset": ".images",
    "combine_label_columns": ".images",
    "label_column_sizes": ".images",
    "COMBINED_LABEL": ".images",
    "with_pixel_values": ".images",
    "collate_pixel_values": ".images",
    "PixelTransform": ".pixels",
    "RESIZE_MODES": ".pixels",
    "to_model_mode": ".image_modes",
    "load_image_folder": ".image_folder",
    "load_streaming_image_dataset": ".streaming",
    "TOKENIZER_IDENTITY_FILE": ".tokens",
    "tokenizer_identity": ".tokens",
    "save_token_dataset": ".tokens",
    "load_token_dataset": ".tokens",
    "validate_token_dataset": ".tokens",
    "encode_image_dataset": ".tokens",
    "FASHION_MNIST": ".fashion_mnist",
    "FASHION_MNIST_CLASSES": ".fashion_mnist",
    "FASHION_MNIST_HUB_ID": ".fashion_mnist",
    "fashion_mnist_dir": ".fashion_mnist",
    "EMOJI": ".emoji",
    "prepare_emoji": ".emoji",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from .emoji import EMOJI, prepare_emoji
    from .fashion_mnist import FASHION_MNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_HUB_ID, fashion_mnist_dir
    from .image_folder import load_image_folder
    from .image_modes import to_model_mode
    from .images import (
        COMBINED_LABEL,
        collate_pixel_values,
        combine_label_columns,
        label_column_sizes,
        load_image_dataset,
        with_pixel_values,
    )
    from .pixels import RESIZE_MODES, PixelTransform
    from .registry import DATASETS, RegisteredDataset
    from .streaming import load_streaming_image_dataset
    from .tokens import (
        TOKENIZER_IDENTITY_FILE,
        encode_image_dataset,
        load_token_dataset,
        save_token_dataset,
        tokenizer_identity,
        validate_token_dataset,
    )
