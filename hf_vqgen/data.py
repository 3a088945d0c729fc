"""Image datasets in, pixel tensors in [-1, 1] out.

`load_image_dataset` gives a `datasets.Dataset` with an `image` column (PIL images) and, where the source has
labels, a `label` column, from Fashion-MNIST (local IDX files or the Hub copy), any Hub dataset id, or a local image
folder (scanned and checked by `hf_vqgen.image_folder`). `PixelTransform` / `with_pixel_values` turn its images into
`pixel_values` tensors, every image mode through the one rule of `hf_vqgen.image_modes.to_model_mode`.
`validate_token_dataset` checks a whole token dataset once, before a prior trains on it.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .dataset_registry import DATASETS
from .emoji import EMOJI  # noqa: F401 (re-exported)
from .fashion_mnist import (  # noqa: F401 (re-exported: the names scripts and the demo import from here)
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_HUB_ID,
    fashion_mnist_dir,
    has_local_fashion_mnist,
)
from .image_folder import load_image_folder, reject_missing_folder
from .pixels import RESIZE_MODES, PixelTransform  # noqa: F401 (re-exported: `from hf_vqgen.data import PixelTransform`)


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
            `hf_vqgen.image_folder.scan_image_folder`: `train/`, `validation/`, `test/` sub-folders become splits,
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
    registered = DATASETS.get(name_or_path)  # a named dataset: one entry in hf_vqgen/dataset_registry.py
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


# token datasets

TOKENIZER_IDENTITY_FILE = "hf_vqgen_tokenizer.json"


def tokenizer_identity(vqvae) -> dict:
    """What a token dataset must match to be modelled with this tokenizer: codebook size, grid, weights hash."""
    from .utils import state_dict_digest

    height, width = vqvae.latent_shape
    return {
        "num_vq_embeddings": vqvae.config.num_vq_embeddings,
        "grid_height": height,
        "grid_width": width,
        "sample_size": vqvae.config.sample_size,
        "in_channels": vqvae.config.in_channels,
        "weights_sha256": state_dict_digest(vqvae.state_dict()),
    }


def save_token_dataset(dataset: datasets.DatasetDict, path: str | os.PathLike, identity: dict) -> None:
    """`save_to_disk` plus the tokenizer's identity, written to a temporary folder and renamed (no half datasets)."""
    import json
    import shutil

    final, partial = Path(path), Path(f"{path}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    dataset.save_to_disk(str(partial))
    (partial / TOKENIZER_IDENTITY_FILE).write_text(json.dumps(identity, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)


def load_token_dataset(path: str | os.PathLike, vqvae=None) -> tuple[datasets.DatasetDict, dict]:
    """A token dataset written by `examples/encode_dataset.py` and its tokenizer identity. With `vqvae`, raise a
    `ValueError` unless the tokens came from exactly that tokenizer."""
    import json

    identity_file = Path(path) / TOKENIZER_IDENTITY_FILE
    if not identity_file.is_file():
        raise ValueError(
            f"{path} is not a token dataset from examples/encode_dataset.py (no {TOKENIZER_IDENTITY_FILE})."
        )
    identity = json.loads(identity_file.read_text())
    if vqvae is not None:
        expected = tokenizer_identity(vqvae)
        differing = [key for key in expected if identity.get(key) != expected[key]]
        if differing:
            raise ValueError(
                f"The token dataset at {path} was made by another tokenizer ({', '.join(differing)} differ: "
                f"{ {k: identity.get(k) for k in differing} } vs { {k: expected[k] for k in differing} })."
            )
    return datasets.load_from_disk(str(path)), identity


def _validate_token_split(
    split: str, dataset: datasets.Dataset, num_codes: int, num_tokens: int, num_classes: int | None
) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    where = f"Token dataset split {split!r}"
    if "token_ids" not in dataset.column_names:
        raise ValueError(f"{where} has no `token_ids` column: {dataset.column_names}.")
    column = dataset.with_format("arrow")["token_ids"]  # zero-copy over the Arrow table
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or not pa.types.is_integer(
        column.type.value_type
    ):
        raise ValueError(f"{where}: `token_ids` must be lists of integers, got {column.type}.")
    # 1. every row holds num_tokens ids (a missing row reads as length -1)
    lengths = pc.fill_null(pc.list_value_length(column), -1).to_numpy()
    bad = np.flatnonzero(lengths != num_tokens)
    if bad.size:
        raise ValueError(
            f"{where}, row {bad[0]}: {lengths[bad[0]]} token ids, expected num_tokens={num_tokens} "
            f"({bad.size} row(s) of the wrong length in this split)."
        )
    # 2. every id is a code, 0 <= id < num_codes (all rows are num_tokens long: flat id i is in row i // num_tokens)
    flat = pc.list_flatten(column)
    ids = pc.fill_null(flat, -1).to_numpy()
    bad = np.flatnonzero((ids < 0) | (ids >= num_codes))
    if bad.size:
        row, position = divmod(int(bad[0]), num_tokens)
        raise ValueError(
            f"{where}, row {row}, position {position}: token id {ids[bad[0]]} is outside [0, num_codes={num_codes})"
            f"{' (missing ids read as -1)' if flat.null_count else ''} ({bad.size} such id(s) in "
            f"{np.unique(bad // num_tokens).size} row(s) of this split)."
        )
    # 3. labels, if the prior is class-conditional
    if not num_classes:
        return
    if "label" not in dataset.column_names:
        raise ValueError(
            f"{where} has no `label` column, but num_classes={num_classes} (class-conditional prior); encode a "
            "labelled dataset or train an unconditional prior."
        )
    labels = dataset.with_format("arrow")["label"]
    if not pa.types.is_integer(labels.type):
        raise ValueError(f"{where}: `label` must hold integers, got {labels.type}.")
    labels = pc.fill_null(labels, -1).to_numpy()
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(
            f"{where}, row {bad[0]}: label {labels[bad[0]]} is outside [0, num_classes={num_classes})"
            f"{' (missing labels read as -1)' if labels.size and (labels == -1).any() else ''} "
            f"({bad.size} such label(s) in this split)."
        )


def validate_token_dataset(
    dataset: datasets.DatasetDict | datasets.Dataset, num_codes: int, num_tokens: int, num_classes: int | None = None
) -> None:
    """
    Check a whole token dataset once, every split, vectorised over its Arrow columns, before a prior trains on it.

    Args:
        dataset (`datasets.DatasetDict` or `datasets.Dataset`): With a `token_ids` column (lists of ints) and, for a
            class-conditional prior, a `label` column.
        num_codes (`int`): Codebook size K; every id must lie in [0, K).
        num_tokens (`int`): Ids per row (h * w of the token grid).
        num_classes (`int`, *optional*): If given and > 0, a `label` column must exist with values in [0, num_classes).

    Raises:
        `ValueError`: naming the split, the first offending row and value, and how many there are, for a missing
        column, a row of the wrong length, an id outside [0, num_codes), or a label outside [0, num_classes).
    """
    for name, value in (("num_codes", num_codes), ("num_tokens", num_tokens)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
        raise ValueError(f"`num_classes` must be None or a non-negative integer, got {num_classes!r}.")
    if isinstance(dataset, datasets.Dataset):
        dataset = {str(dataset.split) if dataset.split else "dataset": dataset}
    for split, rows in dataset.items():
        _validate_token_split(split, rows, num_codes, num_tokens, num_classes)


@torch.no_grad()
def encode_image_dataset(
    vqvae, dataset: datasets.Dataset, accelerator, batch_size: int = 256, resize_mode: str = "resize"
) -> datasets.Dataset:
    """Token grids of an image dataset (`token_ids`: h*w ids in raster order, int16; `label` if present), batched
    and without gradients; under several Accelerate processes each encodes its share and all get the whole result,
    in order."""
    transform = PixelTransform(vqvae.config.sample_size, vqvae.config.in_channels, resize_mode)
    loader = torch.utils.data.DataLoader(
        with_pixel_values(dataset, transform), batch_size=batch_size, collate_fn=collate_pixel_values
    )
    loader = accelerator.prepare_data_loader(loader)  # each process encodes its share, in order
    columns = {"token_ids": [], "label": []}
    for batch in tqdm(loader, desc="Encoding", disable=not accelerator.is_local_main_process):
        token_ids = vqvae.encode_to_ids(batch["pixel_values"]).flatten(1)
        columns["token_ids"].append(accelerator.gather_for_metrics(token_ids).cpu())
        if "label" in batch:
            columns["label"].append(accelerator.gather_for_metrics(batch["label"]).cpu())
    data = {"token_ids": torch.cat(columns["token_ids"]).to(torch.int16).numpy()}
    features = {"token_ids": datasets.Sequence(datasets.Value("int16"))}
    if columns["label"]:
        data["label"] = torch.cat(columns["label"]).numpy()
        features["label"] = dataset.features["label"]
    return datasets.Dataset.from_dict(
        {k: list(v) if k == "token_ids" else v.tolist() for k, v in data.items()}, features=datasets.Features(features)
    )
