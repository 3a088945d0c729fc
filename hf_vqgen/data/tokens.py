"""Token datasets: image datasets encoded by a tokenizer (`examples/encode_dataset.py`), saved with the identity of
the tokenizer that made them, and checked whole before a prior trains on them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils import state_dict_digest
from .images import collate_pixel_values, with_pixel_values
from .pixels import PixelTransform


TOKENIZER_IDENTITY_FILE = "hf_vqgen_tokenizer.json"


def tokenizer_identity(vqvae) -> dict:
    """What a token dataset must match to be modelled with this tokenizer: codebook size, grid, weights hash."""
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
    final, partial = Path(path), Path(f"{path}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    dataset.save_to_disk(str(partial))
    (partial / TOKENIZER_IDENTITY_FILE).write_text(json.dumps(identity, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)


def load_token_dataset(path: str | os.PathLike, vqvae=None) -> tuple[datasets.DatasetDict, dict]:
    """A token dataset written by `examples/encode_dataset.py` and its tokenizer identity. With `vqvae`, raise a
    `ValueError` unless the tokens came from exactly that tokenizer."""
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
