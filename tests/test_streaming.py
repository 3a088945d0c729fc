"""`--streaming`: shards read per process, positions resumed exactly, token shards written as encoding goes."""

import io
import sys
import tarfile
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import load_file

from hf_vqgen import PixelTransform, VQVAEModel
from hf_vqgen.data import encode_image_dataset, load_token_dataset
from hf_vqgen.data.streaming import (
    StreamingImages,
    StreamingLoader,
    load_streaming_image_dataset,
    local_shards,
    split_by_process,
)
from hf_vqgen.data.token_shards import TokenShardWriter

from .conftest import tiny_vqvae


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import encode_dataset  # noqa: E402
import train_vqvae  # noqa: E402


FEATURES = datasets.Features(
    {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"]), "id": datasets.Value("string")}
)
SHARDS = {"train": (5, 4, 3), "test": (3, 3)}  # rows per shard: uneven on purpose


class Stop(Exception):
    """Stands for the process being killed."""


def write_shards(folder: Path, kind: str = "parquet", size: int = 8) -> dict[str, datasets.Dataset]:
    """`folder/<split>/*.parquet` (image, label, id) or `folder/<split>-NNNNN.tar` (<key>.png, <key>.cls); returns
    each split as one in-memory dataset, the reference for the non-streaming path."""
    rng = np.random.default_rng(0)
    whole = {}
    for split, counts in SHARDS.items():
        parts = []
        for shard, count in enumerate(counts):
            ids = [f"{split}-{shard}-{i}" for i in range(count)]
            pixels = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
            part = datasets.Dataset.from_dict(
                {"image": [Image.fromarray(p) for p in pixels], "label": [i % 3 for i in range(count)], "id": ids},
                features=FEATURES,
            )
            if kind == "parquet":
                (folder / split).mkdir(parents=True, exist_ok=True)
                part.to_parquet(folder / split / f"part-{shard}.parquet")
            else:
                folder.mkdir(parents=True, exist_ok=True)
                with tarfile.open(folder / f"{split}-{shard:05d}.tar", "w") as tar:
                    for key, image, label in zip(ids, pixels, part["label"]):
                        png = io.BytesIO()
                        Image.fromarray(image).save(png, format="PNG")
                        for suffix, data in (("png", png.getvalue()), ("cls", str(label).encode())):
                            info = tarfile.TarInfo(f"{key}.{suffix}")
                            info.size = len(data)
                            tar.addfile(info, io.BytesIO(data))
            parts.append(part)
        whole[split] = datasets.concatenate_datasets(parts)
    return whole


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    return folder, write_shards(folder)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vqvae")
    tiny_vqvae().save_pretrained(folder)
    return folder


def assert_same_tokens(tokens: datasets.DatasetDict, reference: dict, vqvae, id_column: str = "id") -> None:
    """Each image encoded exactly once, with the tokens and label of the non-streaming `encode_image_dataset`."""
    for split, images in reference.items():
        expected = encode_image_dataset(vqvae, images, Accelerator(cpu=True), batch_size=4)
        ids = tokens[split][id_column]
        assert sorted(ids) == sorted(images["id"]) and len(set(ids)) == len(ids)  # all, none twice
        rows = {row[id_column]: row for row in tokens[split]}
        for i, image_id in enumerate(images["id"]):
            assert rows[image_id]["token_ids"] == expected[i]["token_ids"]
            assert rows[image_id]["label"] == expected[i]["label"]
        assert tokens[split].features["token_ids"] == expected.features["token_ids"]


# sources


def test_local_shard_layout(tmp_path):
    for name in ("train-0.parquet", "train_1.parquet", "test-0.parquet", "trainer.parquet", "notes.txt"):
        (tmp_path / name).touch()
    expected = [str(tmp_path / "train-0.parquet"), str(tmp_path / "train_1.parquet")]
    assert local_shards(tmp_path, "train") == ("parquet", expected)
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a" / "x.tar").touch()
    assert local_shards(tmp_path, "test") == (
        "webdataset",
        [str(tmp_path / "test" / "a" / "x.tar")],
    )  # sub-folder first
    with pytest.raises(ValueError, match="No .parquet or .tar shards for split 'validation'"):
        local_shards(tmp_path, "validation")
    (tmp_path / "test" / "y.parquet").touch()
    with pytest.raises(ValueError, match="mixes Parquet and .tar"):
        local_shards(tmp_path, "test")


def test_each_process_reads_its_own_shards(shards):
    folder, whole = shards
    train = load_streaming_image_dataset(str(folder), "train", id_column="id")
    assert train.num_shards == 3 and train.column_names == ["image", "label", "id"]
    parts = [[row["id"] for row in split_by_process(train, rank, 2)] for rank in range(2)]
    assert {i.split("-")[1] for i in parts[0]} == {"0", "2"} and {i.split("-")[1] for i in parts[1]} == {"1"}
    assert sorted(parts[0] + parts[1]) == sorted(whole["train"]["id"])
    with pytest.raises(ValueError, match="`image_column` 'pixels'"):
        load_streaming_image_dataset(str(folder), "train", image_column="pixels")


def test_unreadable_images_are_skipped_with_a_warning(tmp_path, caplog):
    good = io.BytesIO()
    Image.new("L", (8, 8), 7).save(good, format="PNG")
    images = [{"bytes": good.getvalue(), "path": None}, {"bytes": b"not a png", "path": None}]
    rows = {"image": images, "id": ["ok", "bad"]}
    (tmp_path / "train").mkdir()
    features = datasets.Features({"image": datasets.Image(), "id": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "train" / "0.parquet")
    images = StreamingImages(load_streaming_image_dataset(str(tmp_path), id_column="id"), PixelTransform(8))
    assert [row["id"] for row in images] == ["ok"]
    assert "Skipped an unreadable image ({'id': 'bad'})" in caplog.text


# positions


def stream_ids(loader: StreamingLoader, count: int) -> list[list[str]]:
    batches = iter(loader)
    return [next(batches)["id"] for _ in range(count)]


def make_loader(folder: Path, shuffle_buffer_size: int) -> StreamingLoader:
    rows = load_streaming_image_dataset(str(folder), "train", id_column="id")
    return StreamingLoader(StreamingImages(rows, PixelTransform(8), shuffle_buffer_size, seed=(0, 0)), batch_size=2)


@pytest.mark.parametrize("shuffle_buffer_size", [0, 4])
def test_resumed_stream_continues_exactly_where_it_stood(shards, shuffle_buffer_size):
    """Across an epoch boundary and with rows waiting in the shuffle buffer: the resumed loader yields what the
    uninterrupted one did, and no row is read twice (the dataset's position is restored, not replayed)."""
    folder, whole = shards
    uninterrupted = stream_ids(make_loader(folder, shuffle_buffer_size), 10)  # 12 rows = 6 batches per epoch
    first_epoch = [i for batch in uninterrupted[:6] for i in batch]
    assert sorted(first_epoch) == sorted(whole["train"]["id"])
    assert (first_epoch != whole["train"]["id"]) == (shuffle_buffer_size > 1)
    for stop in (3, 6, 7):
        loader = make_loader(folder, shuffle_buffer_size)
        before = stream_ids(loader, stop)
        state = loader.state_dict()
        resumed = make_loader(folder, shuffle_buffer_size)
        resumed.load_state_dict(state)
        assert before + stream_ids(resumed, 10 - stop) == uninterrupted, stop


# encoding


def encode_args(tokenizer_dir, data_dir, output_dir, *extra) -> list[str]:
    return ["--vqvae_name_or_path", str(tokenizer_dir), "--train_data_dir", str(data_dir), "--output_dir",
            str(output_dir), "--streaming", "--batch_size", "3", "--rows_per_shard", "4", *extra]  # fmt: skip


def test_webdataset_shards_encode_like_the_in_memory_dataset(tmp_path, tokenizer_dir):
    whole = write_shards(tmp_path / "wds", kind="webdataset")
    argv = encode_args(tokenizer_dir, tmp_path / "wds", tmp_path / "tokens", "--image_column", "png",
                       "--label_columns", "cls", "--id_column", "__key__")  # fmt: skip
    encode_dataset.main(encode_dataset.parse_args(argv))
    vqvae = VQVAEModel.from_pretrained(tokenizer_dir)
    tokens, identity = load_token_dataset(tmp_path / "tokens", vqvae)  # the format train_prior.py reads
    assert not list((tmp_path / "tokens").rglob("*.parquet"))  # the shards were assembled and removed
    assert_same_tokens(tokens, whole, vqvae, id_column="__key__")


def test_killed_encoding_resumes_without_encoding_an_image_twice(tmp_path, shards, tokenizer_dir, monkeypatch):
    folder, whole = shards
    argv = encode_args(tokenizer_dir, folder, tmp_path / "tokens", "--id_column", "id")
    flush = TokenShardWriter.flush

    def flush_then_die(self, stream_state, force=False):
        flush(self, stream_state, force)
        if self.part == 1:  # the first part of the train split (2 batches of 3 rows) is written
            raise Stop

    monkeypatch.setattr(TokenShardWriter, "flush", flush_then_die)
    with pytest.raises(Stop):
        encode_dataset.main(encode_dataset.parse_args(argv))
    assert [p.name for p in (tmp_path / "tokens" / "train").glob("tokens-*")] == ["tokens-00000-00000.parquet"]
    monkeypatch.setattr(TokenShardWriter, "flush", flush)
    encode_to_ids, encoded = VQVAEModel.encode_to_ids, []
    monkeypatch.setattr(VQVAEModel, "encode_to_ids", lambda self, x: encoded.append(len(x)) or encode_to_ids(self, x))
    encode_dataset.main(encode_dataset.parse_args(argv + ["--resume"]))
    assert sum(encoded) == 6 + 6  # train: the 12 rows but the 6 of the written part; test: all 6
    vqvae = VQVAEModel.from_pretrained(tokenizer_dir)
    assert_same_tokens(load_token_dataset(tmp_path / "tokens", vqvae)[0], whole, vqvae)


def test_two_processes_encode_each_image_exactly_once(tmp_path, shards, tokenizer_dir):
    from .test_multiprocess_training import launch

    folder, whole = shards
    launch("encode_dataset.py", encode_args(tokenizer_dir, folder, tmp_path / "tokens", "--id_column", "id"), 2)
    vqvae = VQVAEModel.from_pretrained(tokenizer_dir)
    tokens, _ = load_token_dataset(tmp_path / "tokens", vqvae)
    assert_same_tokens(tokens, whole, vqvae)


# training


WEIGHTS = "diffusion_pytorch_model.safetensors"


def streaming_training_args(shards: Path, batch_size: int) -> list[str]:
    return ["--train_data_dir", str(shards), "--streaming", "--shuffle_buffer_size", "4", "--resolution", "8",
            "--num_channels", "1", "--block_out_channels", "8", "16", "--latent_channels", "8", "--norm_num_groups", "4", "--vq_embed_dim",
            "4", "--num_vq_embeddings", "16", "--train_batch_size", str(batch_size), "--eval_batch_size", "8",
            "--report_to", "none", "--max_train_steps", "5", "--checkpointing_steps", "2", "--validation_steps",
            "100", "--lr_warmup_steps", "1"]  # fmt: skip


def assert_same_weights(one: Path, two: Path) -> None:
    expected, actual = load_file(one / WEIGHTS), load_file(two / WEIGHTS)
    assert expected.keys() == actual.keys() and all(torch.equal(expected[name], actual[name]) for name in expected)


def test_streaming_tokenizer_training_resumes_bitwise(tmp_path, monkeypatch):
    """A run stopped after checkpoint-2 and resumed ends with the weights of an uninterrupted run: the checkpoint
    holds the stream position and the shuffle buffer."""
    write_shards(tmp_path / "shards")
    common = streaming_training_args(tmp_path / "shards", batch_size=4)
    train_vqvae.main(train_vqvae.parse_args(common + ["--output_dir", str(tmp_path / "uninterrupted")]))

    save_checkpoint = train_vqvae.save_checkpoint

    def save_then_stop(accelerator, output_dir, step, total_limit):
        path = save_checkpoint(accelerator, output_dir, step, total_limit)
        if step == 2:
            raise Stop
        return path

    monkeypatch.setattr(train_vqvae, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        train_vqvae.main(train_vqvae.parse_args(common + ["--output_dir", str(tmp_path / "interrupted")]))
    monkeypatch.setattr(train_vqvae, "save_checkpoint", save_checkpoint)
    assert (tmp_path / "interrupted" / "checkpoint-2" / "custom_checkpoint_0.pkl").is_file()  # the stream position
    argv = common + ["--output_dir", str(tmp_path / "interrupted"), "--resume_from_checkpoint", "latest"]
    assert train_vqvae.main(train_vqvae.parse_args(argv))["train_steps"] == 5
    assert_same_weights(tmp_path / "uninterrupted", tmp_path / "interrupted")


def test_two_process_streaming_training_resumes_each_process_stream(tmp_path):
    """Under DDP each process saves and gets back its own position (3 shards: one process reads two)."""
    from .test_multiprocess_training import launch

    write_shards(tmp_path / "shards")
    common = streaming_training_args(tmp_path / "shards", batch_size=2)
    launch("train_vqvae.py", common + ["--output_dir", str(tmp_path / "uninterrupted")], 2)
    checkpoint = str(tmp_path / "uninterrupted" / "checkpoint-2")
    launch(
        "train_vqvae.py",
        common + ["--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", checkpoint],
        2,
    )
    assert_same_weights(tmp_path / "uninterrupted", tmp_path / "resumed")


def test_streaming_refuses_dataloader_workers():
    with pytest.raises(SystemExit):
        train_vqvae.parse_args(["--streaming", "--dataloader_num_workers", "2"])
