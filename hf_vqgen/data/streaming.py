"""Image datasets larger than one machine's disk or memory: streamed, split across processes, resumable.

`load_streaming_image_dataset` opens a split as a `datasets.IterableDataset` (a Hub dataset id, or a local folder of
Parquet or WebDataset-style `.tar` shards); `split_by_process` gives each process its own shards
(`datasets.distributed.split_dataset_by_node`); `StreamingImages` turns the rows into `pixel_values` through the same
`PixelTransform` as every other source, with an optional shuffle buffer; `StreamingLoader` batches them for a
training loop, endlessly (epoch after epoch), and saves and restores its position with the Accelerate checkpoint.

Local shard layout, for a split named `train` (likewise `test`, `validation`, ...): every `*.parquet` or `*.tar`
file under `<folder>/train/` (recursively), or else every such file directly in `<folder>` whose name starts with
`train-`, `train_` or `train.`; sorted by path; one format per split. Parquet shards hold an `image` column (the
`datasets.Image` feature: PNG/JPEG bytes) and optionally `label`; WebDataset shards hold `<key>.png` (or `.jpg`, ...)
and optionally `<key>.cls` per sample, which come out as columns `png` and `cls` (`--image_column png
--label_columns cls` for `encode_dataset.py`) plus `__key__`.

Resuming is exact: the position is `datasets.IterableDataset.state_dict()` (the shard and row reached, read when a
checkpoint is saved, with `num_workers=0`, so no row is in flight) plus this module's shuffle buffer (its rows,
undecoded) and random state; a resumed run reads no row twice and yields the same batches as an uninterrupted one.
The cost is the checkpoint size: `shuffle_buffer_size` undecoded images per process. It needs the same number of
processes as the interrupted run. (`datasets`' own `IterableDataset.shuffle` is not used: it drops the buffer's rows
on resume and can repeat rows.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node

from .images import collate_pixel_values
from .pixels import PixelTransform
from .registry import DATASETS


logger = logging.getLogger(__name__)

SHARD_FORMATS = {".parquet": "parquet", ".tar": "webdataset"}


# sources


def local_shards(folder: str | Path, split: str) -> tuple[str, list[str]]:
    """The `datasets` builder (`"parquet"` or `"webdataset"`) and the sorted shard files of `split` in `folder`:
    files under `<folder>/<split>/`, else files in `<folder>` named `<split>-*`, `<split>_*` or `<split>.*`."""
    folder = Path(folder).expanduser()
    if (folder / split).is_dir():
        files = sorted(path for path in (folder / split).rglob("*") if path.suffix in SHARD_FORMATS)
    else:
        pattern = re.compile(rf"{re.escape(split)}[-_.]")
        files = sorted(path for path in folder.iterdir() if path.suffix in SHARD_FORMATS and pattern.match(path.name))
    if not files:
        raise ValueError(
            f"No {' or '.join(SHARD_FORMATS)} shards for split {split!r} in {folder}: expected files under "
            f"{folder / split}/ or named {split}-*.parquet / {split}-*.tar there (loose images: drop --streaming)."
        )
    formats = {SHARD_FORMATS[path.suffix] for path in files}
    if len(formats) > 1:
        raise ValueError(f"Split {split!r} in {folder} mixes Parquet and .tar shards; keep one format per split.")
    return formats.pop(), [str(path) for path in files]


def load_streaming_image_dataset(
    name_or_path: str,
    split: str = "train",
    image_column: str = "image",
    label_column: str | None = "label",
    id_column: str | None = None,
    cache_dir: str | None = None,
) -> datasets.IterableDataset:
    """
    Open an image dataset split as a `datasets.IterableDataset` of undecoded rows: `image` (`{"bytes", "path"}`),
    `label` if the source has `label_column`, and `id_column` under its own name if given.

    Args:
        name_or_path (`str`): A local folder of Parquet or `.tar` shards (layout in the module docstring), a Hub
            dataset id (read over the network, never downloaded whole), or `"fashion_mnist"` (its Hub copy).
        split (`str`, *optional*, defaults to `"train"`): The split to read.
        image_column (`str`, *optional*, defaults to `"image"`): Source column of the images (`png`, `jpg`, ... for
            WebDataset shards).
        label_column (`str`, *optional*, defaults to `"label"`): Source column of integer class labels, used when
            present (`cls` for WebDataset shards).
        id_column (`str`, *optional*): A column copied through as it is (e.g. `__key__`), to trace rows.
        cache_dir (`str`, *optional*): `datasets` cache folder.
    """
    registered = DATASETS.get(name_or_path)
    if registered is not None and registered.hub_id is None:
        raise ValueError(f"The {name_or_path} dataset is local and prepared once ({registered.prepare}): use it "
                         "without --streaming.")  # fmt: skip
    if registered is not None:
        name_or_path = registered.hub_id  # streamed from its Hub copy
    if Path(name_or_path).expanduser().is_dir():
        builder, files = local_shards(name_or_path, split)
        dataset = datasets.load_dataset(builder, data_files={split: files}, split=split, streaming=True)
    else:
        dataset = datasets.load_dataset(name_or_path, split=split, streaming=True, cache_dir=cache_dir)
    if dataset.features is None:  # sources without metadata: infer the columns from the first rows
        dataset = dataset._resolve_features()
    features = dataset.features
    if image_column not in features or not isinstance(features[image_column], datasets.Image):
        raise ValueError(
            f"`image_column` {image_column!r} is not an image column of {name_or_path!r} ({split}): {features}."
        )
    if id_column is not None and id_column not in features:
        raise ValueError(f"`id_column` {id_column!r} is not a column of {name_or_path!r}: {list(features)}.")
    keep = {image_column: "image"}
    if label_column and label_column in features:
        keep[label_column] = "label"
    if id_column:
        keep[id_column] = id_column
    dataset = dataset.cast_column(image_column, datasets.Image(decode=False)).select_columns(list(keep))
    renames = {k: v for k, v in keep.items() if k != v}
    return dataset.rename_columns(renames) if renames else dataset  # undecoded first: renaming maps every row


def split_by_process(dataset: datasets.IterableDataset, rank: int, world_size: int) -> datasets.IterableDataset:
    """This process's part: whole shards (rank r reads shards r, r + world_size, ...), each row read by exactly one
    process; with fewer shards than processes, every process reads every shard and keeps 1 row in `world_size`."""
    if world_size == 1:
        return dataset
    strategy = "shards" if dataset.num_shards >= world_size else "examples"
    if strategy == "examples":
        logger.warning(
            "%d shard(s) for %d processes: each process reads every shard and keeps 1 row in %d. Write at least as "
            "many shards as processes to split the reading.", dataset.num_shards, world_size, world_size,
        )  # fmt: skip
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size, strategy=strategy)


def token_features(images: datasets.IterableDataset) -> datasets.Features:
    """Columns of the token rows encoded from `images`: `token_ids` (int16), then `label` and the id column if any."""
    features = {"token_ids": datasets.Sequence(datasets.Value("int16"))}
    for name, feature in images.features.items():
        if name == "label":
            features[name] = feature if isinstance(feature, datasets.ClassLabel) else datasets.Value("int64")
        elif name != "image":
            features[name] = feature
    return datasets.Features(features)


# rows -> pixels


class StreamingImages(torch.utils.data.IterableDataset):
    r"""
    Rows of a streamed image dataset as `{"pixel_values": (C, H, W) tensor in [-1, 1], "label": int, <id>: ...}`
    (label and id where the rows have them); undecodable images are skipped with a warning.

    Args:
        dataset (`datasets.IterableDataset`): From `load_streaming_image_dataset` (usually after `split_by_process`).
        transform (`PixelTransform`): The one image rule of every source.
        shuffle_buffer_size (`int`, *optional*, defaults to 0): Rows drawn at random from a buffer of this many
            (0 or 1: in stream order). Shards are read in a new order each epoch either way.
        seed (`int` or `tuple[int, ...]`, *optional*, defaults to 0): Seeds the buffer's draws (with the epoch); give
            each process its own, e.g. `(seed, rank)`.

    `state_dict()` / `load_state_dict()` hold the position (epoch, the dataset's state, the buffer and its random
    state): a new iterator after `load_state_dict` continues exactly where the saved one stood.
    """

    def __init__(
        self,
        dataset: datasets.IterableDataset,
        transform: PixelTransform,
        shuffle_buffer_size: int = 0,
        seed: int | tuple[int, ...] = 0,
    ):
        if shuffle_buffer_size < 0:
            raise ValueError(f"`shuffle_buffer_size` must be >= 0, got {shuffle_buffer_size}.")
        self.dataset, self.transform = dataset, transform
        self.shuffle_buffer_size, self.seed = shuffle_buffer_size, (seed,) if isinstance(seed, int) else tuple(seed)
        self.epoch = 0
        self._buffer: list[dict] = []
        self._rng = np.random.default_rng([*self.seed, 0])
        self._started = False
        self._resume: dict | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "dataset": self.dataset.state_dict() if self._started else None,
            "buffer": list(self._buffer),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self._resume = state

    def _start(self) -> None:
        """Set up the dataset, buffer and random state for a new pass: where a loaded state says, else afresh."""
        state, self._resume = self._resume, None
        if state is not None:
            self.epoch = state["epoch"]
        self.dataset.set_epoch(self.epoch)
        self._buffer = list(state["buffer"]) if state else []
        self._rng = np.random.default_rng([*self.seed, self.epoch])
        if state is not None:
            self._rng.bit_generator.state = state["rng"]
            if state["dataset"] is not None:
                self.dataset.load_state_dict(state["dataset"])
        self._started = True

    def _rows(self):
        """Undecoded rows, in stream order or drawn from the shuffle buffer (which is part of the state)."""
        self._start()
        for row in self.dataset:
            if self.shuffle_buffer_size <= 1:
                yield row
            elif len(self._buffer) < self.shuffle_buffer_size:
                self._buffer.append(row)
            else:
                index = int(self._rng.integers(len(self._buffer)))
                self._buffer[index], row = row, self._buffer[index]
                yield row
        while self._buffer:  # the stream is done: empty the buffer in random order
            yield self._buffer.pop(int(self._rng.integers(len(self._buffer))))

    def __iter__(self):
        if torch.utils.data.get_worker_info() is not None:
            raise ValueError(
                "StreamingImages keeps its position in the main process: use a DataLoader with num_workers=0."
            )
        decoder = datasets.Image()
        for row in self._rows():
            try:
                image = decoder.decode_example(row["image"])
                image.load()
            except Exception as error:  # noqa: BLE001 - any decoding failure means the image is unusable
                where = {k: v for k, v in row.items() if k not in ("image", "label")} or row["image"]
                logger.warning("Skipped an unreadable image (%.200s): %s: %s", where, type(error).__name__, error)
                continue
            yield {**{k: v for k, v in row.items() if k != "image"}, "pixel_values": self.transform(image)}


def collate_streaming(examples: list[dict]) -> dict:
    """`collate_pixel_values` that also keeps the id column (any column besides pixels and label) as a list."""
    batch = collate_pixel_values(examples)
    for name in examples[0].keys() - {"pixel_values", "label"}:
        batch[name] = [example[name] for example in examples]
    return batch


# batches for training


class StreamingLoader:
    """
    Batches of `StreamingImages` on `device`, epoch after epoch without end (`--max_train_steps` ends training; a
    process whose shards run out starts its next epoch, so uneven shards never stall the others).

    Register it with `accelerator.register_for_checkpointing`: `state_dict()` gathers every process's position
    (a collective call: every process calls it, as `Accelerator.save_state` does), `load_state_dict()` picks this
    process's. Resuming needs the same number of processes.
    """

    def __init__(self, images: StreamingImages, batch_size: int, device: torch.device | str = "cpu"):
        self.images, self.batch_size, self.device = images, batch_size, device
        self.loader = torch.utils.data.DataLoader(
            images, batch_size=batch_size, collate_fn=collate_streaming, drop_last=True, num_workers=0
        )

    def __iter__(self):
        from accelerate.utils import send_to_device

        while True:
            resumed, empty = self.images._resume is not None, True
            for batch in self.loader:
                empty = False
                yield send_to_device(batch, self.device)
            if empty and not resumed:
                raise ValueError(
                    f"A process's share of the training data has fewer rows than batch_size={self.batch_size}."
                )
            self.images.set_epoch(self.images.epoch + 1)

    def state_dict(self) -> dict:
        from accelerate.utils import gather_object

        return {"processes": gather_object([self.images.state_dict()])}

    def load_state_dict(self, state: dict) -> None:
        from accelerate import PartialState

        process = PartialState()
        saved = state["processes"]
        if len(saved) != process.num_processes:
            raise ValueError(
                f"The checkpoint's data position was saved by {len(saved)} process(es); resume a --streaming run with "
                f"the same number (got {process.num_processes})."
            )
        self.images.load_state_dict(saved[process.process_index])
