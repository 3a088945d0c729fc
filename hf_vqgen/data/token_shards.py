"""Token shards written while encoding streams, and the token dataset assembled from them.

Layout while encoding (`examples/encode_dataset.py --streaming`), per split and process (rank):

    <output_dir>/<split>/tokens-<rank>-<part>.parquet  # `token_ids` (int16 lists), `label`, id column
    <output_dir>/<split>/state-<rank>.json             # parts and rows written, the stream position after them
    <output_dir>/<split>/done-<rank>.json              # this process has encoded its whole share of the split

(`<rank>` and `<part>` are 5-digit numbers; a part holds at least `rows_per_shard` rows, the last one fewer.)

Each part is written to a temporary name and renamed, then the state that ends with it; a killed run resumes from
the last state (parts written after it are removed and encoded again), so each image is encoded exactly once. At the
end the main process assembles the parts (rank by rank, part by part, streamed through an on-disk Arrow cache, never
all in memory) into the `save_to_disk` token dataset that `hf_vqgen.data.load_token_dataset` reads; the shards go.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq

from .tokens import save_token_dataset


SHARD_GLOB = "tokens-*.parquet"


def _atomic(path: Path, write) -> None:
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def clear_token_shards(output_dir: str | os.PathLike, splits: list[str]) -> None:
    """Remove the shards, states and markers of an earlier encoding into `output_dir`, so that a new run starts
    clean. Call on the main process only."""
    for split in splits:
        folder = Path(output_dir) / split
        for pattern in (SHARD_GLOB, "state-*.json", "done-*.json", ".*.partial"):
            for path in folder.glob(pattern):
                path.unlink()


class TokenShardWriter:
    """
    Token rows of one split and one process, written to Parquet every `rows_per_shard` rows (layout in the module
    docstring); with `resume`, continues after the last part an earlier run of the same tokenizer and process count
    recorded.

    Args:
        folder (`str` or `os.PathLike`): `<output_dir>/<split>`.
        rank (`int`), world_size (`int`): This process and the number of processes.
        features (`datasets.Features`): Columns of the rows (`token_ids`, then `label`, id column).
        rows_per_shard (`int`): A part is written once this many rows are pending (at a batch boundary).
        tokenizer_sha256 (`str`): Identity of the tokenizer; a resumed run must use the same one.
        resume (`bool`, *optional*, defaults to `False`): Continue from `state-<rank>.json` if there is one.
    """

    def __init__(self, folder, rank: int, world_size: int, features: datasets.Features, rows_per_shard: int,
                 tokenizer_sha256: str, resume: bool = False):  # fmt: skip
        if rows_per_shard < 1:
            raise ValueError(f"`rows_per_shard` must be >= 1, got {rows_per_shard}.")
        self.folder, self.rank, self.features, self.rows_per_shard = Path(folder), rank, features, rows_per_shard
        self.folder.mkdir(parents=True, exist_ok=True)
        self.identity = {"world_size": world_size, "tokenizer_sha256": tokenizer_sha256}
        self.part, self.num_rows, self.stream_state = 0, 0, None
        self.done = False
        self._pending: list[dict] = []
        state_file = self._path("state", "json")
        if resume and state_file.is_file():
            state = json.loads(state_file.read_text())
            differing = {k: (state[k], v) for k, v in self.identity.items() if state[k] != v}
            if differing:
                raise ValueError(
                    f"Cannot resume the encoding in {self.folder}: {differing} (saved vs now) differ; resume with "
                    "the same tokenizer and number of processes, or start again without --resume."
                )
            self.part, self.num_rows, self.stream_state = state["part"], state["num_rows"], state["stream_state"]
            self.done = self._path("done", "json").is_file()
        for path in self.folder.glob(f"tokens-{rank:05d}-*.parquet"):  # written after the last saved state
            if int(path.stem.rsplit("-", 1)[1]) >= self.part:
                path.unlink()

    def _path(self, kind: str, suffix: str, part: int | None = None) -> Path:
        name = f"{kind}-{self.rank:05d}" + ("" if part is None else f"-{part:05d}")
        return self.folder / f"{name}.{suffix}"

    @property
    def pending_rows(self) -> int:
        return sum(len(columns["token_ids"]) for columns in self._pending)

    def add(self, columns: dict) -> None:
        """Rows to write: `token_ids` (B, h*w) int16 array, then `label` and id values of the same length."""
        self._pending.append(columns)

    def flush(self, stream_state: dict, force: bool = False) -> None:
        """Write the pending rows as the next part if there are `rows_per_shard` (or any, with `force`), then the
        state: `stream_state` must be the stream's position just after the last pending row."""
        if self.pending_rows < (1 if force else self.rows_per_shard):
            return
        rows = {name: [] for name in self.features}
        for columns in self._pending:
            for name in rows:
                values = columns[name]
                rows[name].extend(list(values) if isinstance(values, np.ndarray) and values.ndim > 1 else values)
        table = datasets.Dataset.from_dict(rows, features=self.features).data.table  # keeps the features' metadata
        _atomic(self._path("tokens", "parquet", self.part), lambda path: pq.write_table(table, path))
        self.part, self.num_rows, self._pending = self.part + 1, self.num_rows + len(rows["token_ids"]), []
        self.stream_state = stream_state
        state = {**self.identity, "part": self.part, "num_rows": self.num_rows, "stream_state": stream_state}
        _atomic(self._path("state", "json"), lambda path: path.write_text(json.dumps(state)))

    def close(self, stream_state: dict) -> None:
        """Write what is pending and mark this process's share of the split as encoded."""
        self.flush(stream_state, force=True)
        done = {"parts": self.part, "num_rows": self.num_rows}
        _atomic(self._path("done", "json"), lambda path: path.write_text(json.dumps(done)))
        self.done = True


def wait_for_files(paths: list[Path], poll_seconds: float = 2.0) -> None:
    """Block until every path exists: processes wait for each other through the shared output folder rather than a
    collective, whose timeout (30 minutes by default) an uneven share of the shards can exceed."""
    while not all(Path(path).exists() for path in paths):
        time.sleep(poll_seconds)


def assemble_token_dataset(output_dir: str | os.PathLike, splits: list[str], identity: dict) -> datasets.DatasetDict:
    """Turn the Parquet parts in `<output_dir>/<split>/` into the token dataset of `save_token_dataset` (same folder,
    replaced atomically), streaming them through an Arrow cache beside `output_dir`. Returns it, memory-mapped."""
    output_dir = Path(output_dir)
    with tempfile.TemporaryDirectory(dir=output_dir.parent, prefix=f".{output_dir.name}-cache-") as cache:
        tokens = {}
        for split in splits:
            files = sorted(str(path) for path in (output_dir / split).glob(SHARD_GLOB))
            if not files:
                raise ValueError(
                    f"No token shards for split {split!r} in {output_dir}: no readable image was encoded."
                )
            tokens[split] = datasets.Dataset.from_parquet(files, split=split, cache_dir=cache)
        save_token_dataset(datasets.DatasetDict(tokens), output_dir, identity)
    return datasets.load_from_disk(str(output_dir))
