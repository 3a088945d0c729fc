"""Local image folders: supported layouts, refused layouts (with the paths at fault), logging, missing paths."""

import logging
import os

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_vqgen import load_image_dataset
from hf_vqgen.data.image_folder import reject_missing_folder, scan_image_folder


def _png(path, value: int = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((5, 6), value, dtype=np.uint8)).save(path)


def _pngs(root, *relative):
    for i, name in enumerate(relative):
        _png(root / name, value=10 * i)


@pytest.fixture
def no_hub(monkeypatch):
    """Fail the test if anything reaches `datasets.load_dataset` (the Hub)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_dataset called with {args}")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


# supported layouts


def test_class_folders_without_split_folders_get_a_deterministic_held_out_split(tmp_path, no_hub, caplog):
    _pngs(tmp_path, "cat/a.png", "cat/b.png", "dog/c.jpg")
    with caplog.at_level(logging.INFO, logger="hf_vqgen.data.image_folder"):
        train = load_image_dataset(str(tmp_path))
    test = load_image_dataset(str(tmp_path), split="test")
    assert train.features["label"].names == test.features["label"].names == ["cat", "dog"]
    assert sorted(list(train["label"]) + list(test["label"])) == [0, 0, 1] and len(test) == 1  # a tenth, at least one
    assert train[0]["image"].size == (6, 5)
    assert "held out as the 'test' split" in caplog.text
    assert load_image_dataset(str(tmp_path), split="test")[0]["image"].filename == test[0]["image"].filename
    with pytest.raises(ValueError, match=r"no 'validation' split"):
        load_image_dataset(str(tmp_path), split="validation")


def test_split_folders_share_one_class_list(tmp_path, no_hub):
    _pngs(tmp_path, "train/cat/a.png", "train/dog/b.png", "test/bird/c.png", "test/cat/d.png", "val/dog/e.png")
    train, test = load_image_dataset(str(tmp_path), "train"), load_image_dataset(str(tmp_path), "test")
    validation = load_image_dataset(str(tmp_path), "validation")  # `val/` is read as the validation split
    assert train.features["label"].names == test.features["label"].names == ["bird", "cat", "dog"]
    assert sorted(train["label"]) == [1, 2] and sorted(test["label"]) == [0, 1] and validation["label"] == [2]


@pytest.mark.parametrize("files", [("a.png", "b.png"), ("train/a.png", "test/b.png", "train/c.png")])
def test_flat_folders_are_unlabelled(tmp_path, files):
    _pngs(tmp_path, *files)
    train, test = load_image_dataset(str(tmp_path)), load_image_dataset(str(tmp_path), split="test")
    assert train.column_names == ["image"] and len(train) + len(test) == len(files)  # one folder: split by path hash


def test_symlinked_class_folder_is_followed(tmp_path):
    _pngs(tmp_path / "root", "cat/a.png")
    _pngs(tmp_path / "elsewhere", "dog/b.png", "dog/c.png")
    os.symlink(tmp_path / "elsewhere" / "dog", tmp_path / "root" / "dog")
    train, test = load_image_dataset(str(tmp_path / "root")), load_image_dataset(str(tmp_path / "root"), "test")
    assert train.features["label"].names == ["cat", "dog"] and sorted(list(train["label"]) + list(test["label"])) == [
        0,
        1,
        1,
    ]


def test_symlink_loop_is_cut_and_logged(tmp_path, caplog):
    _pngs(tmp_path, "cat/a.png")
    os.symlink(tmp_path, tmp_path / "cat" / "loop")
    with caplog.at_level(logging.INFO, logger="hf_vqgen.data.image_folder"):
        assert len(load_image_dataset(str(tmp_path))) == 1
    assert "symbolic link loop" in caplog.text and str(tmp_path / "cat" / "loop") in caplog.text


def test_found_and_skipped_files_are_logged(tmp_path, caplog):
    _pngs(tmp_path, "train/cat/a.png", "train/cat/b.png", "train/dog/c.png", "test/cat/d.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "dog" / ".DS_Store").write_bytes(b"")
    os.symlink(tmp_path / "nowhere.png", tmp_path / "train" / "dog" / "gone.png")
    with caplog.at_level(logging.INFO, logger="hf_vqgen.data.image_folder"):
        load_image_dataset(str(tmp_path))
    assert "split 'train': 3 image(s), 2 class(es) (cat: 2, dog: 1)" in caplog.text
    assert "split 'test': 1 image(s), 1 class(es) (cat: 1)" in caplog.text
    for reason, name in [
        ("no image extension", "train/cat/notes.txt"),
        ("hidden", "train/dog/.DS_Store"),
        ("broken symbolic link", "train/dog/gone.png"),
    ]:
        assert f"skipped 1 path(s), {reason}: {tmp_path / name}" in caplog.text


# refused layouts


@pytest.mark.parametrize(
    "files, match, offender",
    [
        (("cat/a.png", "cat/b.png/c.png"), "folders named like image files", "cat/b.png"),
        (("cat/a.png", "cat/sub/b.png"), "images below the class folders", "cat/sub/b.png"),
        (("train/cat/a.png", "train/cat/sub/b.png"), "images below the class folders", "train/cat/sub/b.png"),
        (("a.png", "cat/b.png"), "images at mixed depths", "a.png"),
        (("train/a.png", "train/cat/b.png"), "images at mixed depths", "train/a.png"),
        (("train/cat/a.png", "extra/b.png"), "split folders \\(train\\) next to other folders", "extra"),
        (("train/cat/a.png", "b.png"), "split folders \\(train\\) next to other folders", "b.png"),
        (("train/cat/a.png", "test/b.png"), "labelled splits \\(train\\) next to unlabelled ones \\(test\\)", ""),
        (("val/cat/a.png", "validation/cat/b.png"), "several folders for the 'validation' split", "val"),
    ],
)
def test_layouts_that_would_be_misread_are_refused(tmp_path, files, match, offender):
    _pngs(tmp_path, *files)
    with pytest.raises(ValueError, match=match) as error:
        load_image_dataset(str(tmp_path))
    assert str(tmp_path / offender) in str(error.value) and "expected root/<class>/<image>" in str(error.value)


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="has no image files"):
        load_image_dataset(str(tmp_path))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "readme.md").write_text("hi")
    with pytest.raises(ValueError, match="has no image files.*no image extension.*readme.md"):
        scan_image_folder(tmp_path)


# paths that do not exist


@pytest.mark.parametrize(
    "name", ["./nope", "../nope", "/does/not/exist", "~/no_such_hf_vqgen_folder", "a/b/c", "cats.png", "data\\train"]
)
def test_missing_local_path_is_refused_without_asking_the_hub(tmp_path, monkeypatch, no_hub, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_image_dataset(name)


def test_typo_below_an_existing_folder_is_refused(tmp_path, monkeypatch, no_hub):
    monkeypatch.chdir(tmp_path)
    _pngs(tmp_path, "data/train/cat/a.png")
    with pytest.raises(ValueError, match="folder 'data/trian' does not exist.*local folder 'data' exists"):
        load_image_dataset("data/trian")


def test_a_file_is_not_a_folder(tmp_path, no_hub):
    _png(tmp_path / "a.png")
    with pytest.raises(ValueError, match="is a file"):
        load_image_dataset(str(tmp_path / "a.png"))


@pytest.mark.parametrize("name", ["mnist", "owner/name", "zalando-datasets/fashion_mnist"])
def test_hub_ids_are_left_to_the_hub(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    reject_missing_folder(name)  # no error
