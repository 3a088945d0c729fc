import logging

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from hf_vqgen import PixelTransform, load_image_dataset, with_pixel_values
from hf_vqgen.data import FASHION_MNIST_CLASSES, collate_pixel_values


def test_fashion_mnist_from_local_idx_files(fake_fashion_mnist):
    train = load_image_dataset("fashion_mnist", split="train")
    test = load_image_dataset("fashion_mnist", split="test")
    assert (len(train), len(test)) == (48, 24)
    assert train.column_names == ["image", "label"]
    assert train.features["label"].names == list(FASHION_MNIST_CLASSES)
    image = train[0]["image"]
    assert image.size == (28, 28) and image.mode == "L"


def test_fashion_mnist_pixels_match_idx_bytes(fake_fashion_mnist):
    import gzip

    with gzip.open(fake_fashion_mnist / "t10k-images-idx3-ubyte.gz") as f:
        first = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: 28 * 28].reshape(28, 28)
    assert np.array_equal(np.asarray(load_image_dataset("fashion_mnist", split="test")[0]["image"]), first)


def test_fashion_mnist_unknown_split(fake_fashion_mnist):
    with pytest.raises(ValueError, match="split"):
        load_image_dataset("fashion_mnist", split="validation")


def _write_image_folder(root, corrupt: int = 0, truncated: int = 0, good: int = 3):
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(good):
                Image.fromarray(np.full((12, 10, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "train" / "cat" / "broken.png").write_bytes(b"not a png at all") if corrupt else None
    if truncated:
        data = (root / "train" / "dog" / "0.png").read_bytes()
        big = root / "train" / "dog" / "big.jpg"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big)
        big.write_bytes(big.read_bytes()[: len(big.read_bytes()) // 2])
        assert data


def test_imagefolder_keeps_splits_and_labels(tmp_path):
    _write_image_folder(tmp_path)
    train = load_image_dataset(str(tmp_path), split="train")
    test = load_image_dataset(str(tmp_path), split="test")
    assert len(train) == 6 and len(test) == 6
    assert sorted(set(train["label"])) == [0, 1]


def test_an_image_over_the_size_limit_is_named_as_such_not_unreadable(tmp_path, caplog, monkeypatch):
    _write_image_folder(tmp_path)
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # every test image is now "too large"
    with caplog.at_level(logging.WARNING, logger="hf_vqgen.data"), pytest.raises(ValueError, match="no readable"):
        load_image_dataset(str(tmp_path), split="train")
    assert "larger than Pillow's size limit" in caplog.text


def test_unreadable_and_truncated_files_are_skipped_and_counted(tmp_path, caplog):
    _write_image_folder(tmp_path, corrupt=1, truncated=1)
    with caplog.at_level(logging.WARNING, logger="hf_vqgen.data"):
        train = load_image_dataset(str(tmp_path), split="train")
    assert len(train) == 6
    assert "Skipped 2 of 8 image file(s) that cannot be used" in caplog.text
    assert "UnidentifiedImageError" in caplog.text and "truncated" in caplog.text  # each file with its own reason
    # every remaining row decodes and transforms
    rows = with_pixel_values(train, PixelTransform(16, 3))
    assert all(rows[i]["pixel_values"].shape == (3, 16, 16) for i in range(len(rows)))


def test_only_unreadable_files_is_a_clear_error(tmp_path):
    folder = tmp_path / "train" / "cat"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no readable images"):
        load_image_dataset(str(tmp_path), split="train")


def test_missing_image_column_is_a_clear_error(fake_fashion_mnist):
    with pytest.raises(ValueError, match="image_column"):
        load_image_dataset("fashion_mnist", image_column="img")


@pytest.mark.parametrize("num_channels, mode", [(1, "RGB"), (3, "L"), (1, "L"), (3, "RGBA")])
def test_transform_converts_channels_and_range(num_channels, mode):
    image = Image.new(mode, (8, 8), color=(255,) * len(mode) if len(mode) > 1 else 255)
    pixels = PixelTransform(8, num_channels)(image)
    assert pixels.shape == (num_channels, 8, 8) and pixels.dtype == torch.float32
    assert torch.allclose(pixels, torch.ones_like(pixels))
    black = {"L": 0, "RGB": (0, 0, 0), "RGBA": (0, 0, 0, 255)}[mode]  # opaque: transparent is the background
    assert torch.allclose(PixelTransform(8, num_channels)(Image.new(mode, (8, 8), black)), -torch.ones_like(pixels))


def test_pad_keeps_pixels_and_pads_black():
    image = Image.fromarray(np.full((28, 28), 255, dtype=np.uint8))
    pixels = PixelTransform(32, 1, resize_mode="pad")(image)
    assert pixels.shape == (1, 32, 32)
    assert (
        torch.all(pixels[:, 2:30, 2:30] == 1) and torch.all(pixels[:, :2] == -1) and torch.all(pixels[:, :, 30:] == -1)
    )
    with pytest.raises(ValueError, match="larger than resolution=16"):
        PixelTransform(16, 1, resize_mode="pad")(image)


def test_resize_fits_non_square_images():
    pixels = PixelTransform(16, 3, resize_mode="resize")(Image.new("RGB", (40, 20)))
    assert pixels.shape == (3, 16, 16)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution": 0}, "resolution"),
        ({"num_channels": 2}, "num_channels"),
        ({"resize_mode": "crop"}, "resize_mode"),
    ],
)
def test_transform_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelTransform(**{"resolution": 8, **kwargs})


def test_collate_batches_pixels_and_labels(fake_fashion_mnist):
    rows = with_pixel_values(load_image_dataset("fashion_mnist", split="test"), PixelTransform(28, 1))
    batch = collate_pixel_values([rows[0], rows[1]])
    assert batch["pixel_values"].shape == (2, 1, 28, 28) and batch["label"].dtype == torch.long
    assert -1 <= batch["pixel_values"].min() and batch["pixel_values"].max() <= 1


def test_two_label_columns_combine_into_one_class_per_combination():
    from hf_vqgen.data import COMBINED_LABEL, combine_label_columns

    features = datasets.Features(
        {
            "label": datasets.ClassLabel(names=["animal", "food", "flag"]),
            "style": datasets.ClassLabel(names=["noto", "twemoji"]),
        }
    )
    rows = datasets.Dataset.from_dict({"label": [0, 2, 1], "style": [1, 0, 1]}, features=features)
    combined = combine_label_columns(rows, ["label", "style"])
    names = combined.features[COMBINED_LABEL].names
    assert len(names) == 6 and names[1] == "animal / twemoji"
    assert [names[i] for i in combined[COMBINED_LABEL]] == ["animal / twemoji", "flag / noto", "food / twemoji"]
    with pytest.raises(ValueError, match="'name' must be a ClassLabel"):
        combine_label_columns(rows.add_column("name", ["a", "b", "c"]), ["label", "name"])


def test_label_column_sizes_read_a_combined_label_back():
    from hf_vqgen.data import label_column_sizes

    assert label_column_sizes(["animal / noto", "animal / tw", "food / noto", "food / tw"]) == (2, 2)
    assert label_column_sizes(["shirt", "shoe"]) == (2,)
    assert label_column_sizes(["a / x", "b / y"]) == ()  # not every combination: not a product of columns


def test_a_mistyped_label_column_is_refused_not_dropped(fake_fashion_mnist):
    with pytest.raises(ValueError, match="'lable' is not a column"):
        load_image_dataset("fashion_mnist", split="test", label_column="lable")
    with pytest.raises(ValueError, match="'lable' is not a column"):
        load_image_dataset("fashion_mnist", split="test", label_column=["lable"])
    assert "label" in load_image_dataset("fashion_mnist", split="test", label_column="label").column_names
