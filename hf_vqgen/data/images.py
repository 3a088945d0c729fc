"""Image datasets in, pixel tensors in [-1, 1] out.

`load_image_dataset` gives a `datasets.Dataset` with an `image` column (PIL images) and, where the source has
labels, a `label` column, from a registered dataset (`hf_vqgen.data.registry`), any Hub dataset id, or a local image
folder (scanned and checked by `hf_vqgen.data.image_folder`). `with_pixel_values` turns its images into
`pixel_values` tensors through `PixelTransform`, the one image rule (`hf_vqgen.data.pixels`).
"""

from __future__ import annotations

import io
import itertools
import logging
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

from ..utils import reject_missing_folder
from .image_folder import load_image_folder
from .pixels import PixelTransform
from .registry import DATASETS


logger = logging.getLogger(__name__)


def _unreadable_reason(example: dict) -> str:
    """ "" for a file that decodes whole, else why not, in words (a size limit is not "unreadable")."""
    image = example["image"]
    try:
        with Image.open(io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"]) as opened:
            opened.load()  # decodes every pixel: catches truncated files, not just bad headers
        return ""
    except Image.DecompressionBombError as error:
        return f"larger than Pillow's size limit ({error})"
    except (OSError, SyntaxError, ValueError) as error:  # truncated, not an image, a format Pillow cannot decode
        return f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - any other decoder failure also makes the file unusable
        return f"{type(error).__name__}: {error}"


def _drop_unreadable(dataset: datasets.Dataset) -> datasets.Dataset:
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    reasons = raw.map(
        lambda example: {"reason": _unreadable_reason(example)},
        remove_columns=raw.column_names,
        desc="Checking images",
    )["reason"]
    bad = [i for i, reason in enumerate(reasons) if reason]
    if bad:
        listed = "; ".join(f"{raw[i]['image'].get('path') or f'row {i}'} ({reasons[i]})" for i in bad[:5])
        more = f"; ... ({len(bad)} in all)" if len(bad) > 5 else ""
        logger.warning("Skipped %d of %d image file(s) that cannot be used: %s%s.", len(bad), len(raw), listed, more)
        raw = raw.select([i for i, reason in enumerate(reasons) if not reason])
    return raw.cast_column("image", datasets.Image())


def load_image_dataset(
    name_or_path: str,
    split: str = "train",
    image_column: str = "image",
    label_column: str | None = "label",
    cache_dir: str | None = None,
    extra_columns: list[str] | tuple[str, ...] = (),
) -> datasets.Dataset:
    """
    Load an image dataset split as a `datasets.Dataset` with columns `image` (PIL) and, if present, `label`.

    Args:
        name_or_path (`str`): `"fashion_mnist"` (the IDX files in `$HF_VQGEN_FASHION_MNIST_DIR` or
            `/usr/share/datasets/fashion-mnist/`, from Debian's `dataset-fashion-mnist`; else the Hub copy
            `zalando-datasets/fashion_mnist`), a local folder of images (scanned by
            `hf_vqgen.data.image_folder.scan_image_folder`: `train/`, `validation/`, `test/` sub-folders become splits,
            class sub-folders become labels; what was found and skipped is logged; layouts that would be misread
            are refused), or a Hub dataset id (`name` or `owner/name`).
        split (`str`, *optional*, defaults to `"train"`): Split to load; the source's splits are kept as they are.
        image_column (`str`, *optional*, defaults to `"image"`): Source column holding the images.
        label_column (`str` or `list[str]`, *optional*, defaults to `"label"`): Source column holding class labels,
            if any; several `ClassLabel` columns (e.g. `["label", "style"]` for emoji) become one label over their
            combinations (`combine_label_columns`); a list of one is that column.
        cache_dir (`str`, *optional*): `datasets` cache folder.
        extra_columns (`list[str]`, *optional*): Source columns kept as they are, under their own names (e.g.
            `["code_point", "style"]` for a classifier with several heads).

    Unreadable or truncated image files (local folders and Hub datasets) are skipped and counted in the log.

    Raises:
        `ValueError`: if the split or the image column is missing, no readable image is left, a local folder's layout
        would be misread, or `name_or_path` is written as a local path that does not exist (rather than sent to the
        Hub as a repo id).
    """
    registered = DATASETS.get(name_or_path)  # a named dataset: one entry in hf_vqgen/data/registry.py
    if registered is not None:
        dataset = registered.load(split, cache_dir)
    elif Path(name_or_path).expanduser().is_dir():
        dataset = load_image_folder(name_or_path, split)
    else:
        reject_missing_folder(name_or_path)
        try:
            dataset = datasets.load_dataset(name_or_path, split=split, cache_dir=cache_dir)
        except (ConnectionError, FileNotFoundError) as error:  # a bare name may be a mistyped folder as well
            raise ValueError(
                f"{name_or_path!r} is neither a local folder (no {Path(name_or_path).absolute()}) nor a Hub dataset "
                f"that could be loaded: {error}"
            ) from error

    if image_column not in dataset.column_names:
        raise ValueError(
            f"`image_column` {image_column!r} is not a column of {name_or_path!r}: {dataset.column_names}."
        )
    if isinstance(label_column, (list, tuple)) and len(label_column) == 1:
        label_column = label_column[0]
    elif isinstance(label_column, (list, tuple)):
        dataset, label_column = combine_label_columns(dataset, label_column), COMBINED_LABEL
    if (
        label_column not in (None, "label") and label_column not in dataset.column_names
    ):  # a typo must not drop the labels
        raise ValueError(
            f"`label_column` {label_column!r} is not a column of {name_or_path!r}: {dataset.column_names}."
        )
    keep = {image_column: "image"}
    if label_column and label_column in dataset.column_names:
        keep[label_column] = "label"
    missing = [column for column in extra_columns if column not in dataset.column_names]
    if missing:
        raise ValueError(f"`extra_columns` {missing} are not columns of {name_or_path!r}: {dataset.column_names}.")
    keep |= {column: column for column in extra_columns if column not in keep}
    dataset = dataset.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})
    prepared = registered is not None and registered.is_local()
    if not prepared:  # files of unknown quality: decode each once and skip the unreadable ones
        dataset = _drop_unreadable(dataset)
    if len(dataset) == 0:
        raise ValueError(f"The {split!r} split of {name_or_path!r} has no readable images.")
    return dataset


COMBINED_LABEL = "combined_label"


def combine_label_columns(dataset: datasets.Dataset, columns: list[str] | tuple[str, ...]) -> datasets.Dataset:
    """One `ClassLabel` column over the combinations of several (one class token for "an animal in Twemoji style"):
    label = ((i_1 * n_2 + i_2) * n_3 + i_3) ..., names "name_1 / name_2 / ...", in the order of `columns`."""
    features = dataset.features
    for column in columns:
        if column not in features or not isinstance(features[column], datasets.ClassLabel):
            raise ValueError(f"`label_column` {column!r} must be a ClassLabel column; the dataset has {features}.")
    names = [""]
    for column in columns:
        names = [f"{prefix} / {name}" if prefix else name for prefix in names for name in features[column].names]
    sizes = [features[column].num_classes for column in columns]

    def combine(batch: dict) -> dict:
        combined = np.zeros(len(batch[columns[0]]), dtype=np.int64)
        missing = np.zeros(len(combined), dtype=bool)
        for column, size in zip(columns, sizes):
            values = np.asarray(batch[column], dtype=np.int64)
            missing |= values < 0  # ClassLabel's -1: no label, which must not turn into another class
            combined = combined * size + values
        return {COMBINED_LABEL: np.where(missing, -1, combined).tolist()}

    new_features = datasets.Features({**features, COMBINED_LABEL: datasets.ClassLabel(names=names)})
    return dataset.map(combine, batched=True, features=new_features, desc="Combining labels")


def label_column_sizes(names: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """The column sizes a `combine_label_columns` label was made of, read back from its names ("a / x", "a / y", ...):
    (10, 3) for emoji's category x style; (n,) for names of one column; () when the names are not such a product."""
    if not names:
        return ()
    parts = [str(name).split(" / ") for name in names]
    depth = len(parts[0])
    if any(len(part) != depth for part in parts):
        return ()
    levels = [list(dict.fromkeys(part[i] for part in parts)) for i in range(depth)]
    expected = [" / ".join(combination) for combination in itertools.product(*levels)]
    return tuple(len(level) for level in levels) if expected == [str(name) for name in names] else ()


# pixels


def with_pixel_values(dataset: datasets.Dataset, transform: PixelTransform) -> datasets.Dataset:
    """`dataset` whose rows come out as `{"pixel_values": (C, H, W) tensor, "label": int}` (label if present)."""

    def apply(batch: dict) -> dict:
        out = {"pixel_values": [transform(image) for image in batch["image"]]}
        if "label" in batch:
            out["label"] = batch["label"]
        return out

    return dataset.with_transform(apply)


def collate_pixel_values(examples: list[dict]) -> dict[str, torch.Tensor]:
    """DataLoader `collate_fn` for `with_pixel_values` rows."""
    batch = {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}
    if "label" in examples[0]:
        batch["label"] = torch.tensor([example["label"] for example in examples], dtype=torch.long)
    return batch
