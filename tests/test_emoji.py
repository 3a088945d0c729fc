import json
import shutil
import subprocess
import tarfile
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from hf_vqgen import load_image_dataset
from hf_vqgen.data import emoji
from hf_vqgen.data.emoji import (
    EMOJI_CATEGORIES,
    EMOJI_STYLES,
    build_emoji_dataset,
    is_test_emoji,
    load_emoji,
    normalize_code_point,
    prepare_emoji,
)


# fixture: a tiny emoji-datasource look-alike (emoji.json + 16x16 PNGs on a transparent background)

FAKE_EMOJI = [  # (unified, category, skin tones)
    ("1F600", "Smileys & Emotion", ()),
    ("1F44D", "People & Body", ("1F3FB", "1F3FF")),
    ("1F3FB", "Component", ()),
    ("1F43C", "Animals & Nature", ()),
    ("1F34E", "Food & Drink", ()),
    ("2764-FE0F", "Smileys & Emotion", ()),
    ("1F697", "Travel & Places", ()),
    ("1F1EF-1F1F5", "Flags", ()),
]
SETS = {"noto": "google", "twemoji": "twitter"}


def _write_png(path, rgb, mode="RGBA"):
    """16x16, transparent except an opaque 8x8 square of colour `rgb` in the middle."""
    pixels = np.zeros((16, 16, 4), dtype=np.uint8)
    pixels[4:12, 4:12] = (*rgb, 255)
    image = Image.fromarray(pixels, mode="RGBA")
    path.parent.mkdir(parents=True, exist_ok=True)
    (image.convert("LA") if mode == "LA" else image).save(path)


def _entry(unified, index, has_img):
    image = f"{unified.lower()}.png"
    return {"unified": unified, "image": image, **{f"has_img_{s}": has_img for s in SETS.values()}, "index": index}


def write_fake_datasource(root, style, missing=()):
    entries, index = [], 0
    for unified, category, tones in FAKE_EMOJI:
        entry = {**_entry(unified, index, unified not in missing), "name": f"EMOJI {unified}", "short_name": "x"}
        entry["category"] = category
        entry["skin_variations"] = {t: _entry(f"{unified}-{t}", index + 1 + i, True) for i, t in enumerate(tones)}
        entries.append(entry)
        index += 1 + len(tones)
    root.mkdir(parents=True)
    (root / "emoji.json").write_text(json.dumps(entries))
    folder = root / emoji.EMOJI_PACKAGES[style].images
    for i, item in enumerate(e for entry in entries for e in (entry, *entry["skin_variations"].values())):
        _write_png(folder / item["image"], (200, 10 * i, 50), mode="LA" if i == 3 else "RGBA")
    return root


@pytest.fixture
def sources(tmp_path):
    return {style: write_fake_datasource(tmp_path / style / "package", style) for style in SETS}


def _split_of(dataset):
    return {code: split for split, part in dataset.items() for code in part["code_point"]}


def test_images_are_rgb_64_on_white(sources):
    dataset = build_emoji_dataset(sources)
    assert sorted(dataset) == ["test", "train"]
    for row in [*dataset["train"], *dataset["test"]]:
        image = row["image"]
        assert (image.mode, image.size) == ("RGB", (64, 64))
        pixels = np.asarray(image)
        assert tuple(pixels[0, 0]) == (255, 255, 255)  # transparent corner -> white, not the hidden black
        assert tuple(pixels[32, 32]) != (255, 255, 255)  # the opaque square stays
        if row["code_point"] == "1F600":
            assert tuple(pixels[32, 32]) == (200, 0, 50)


def test_columns_labels_and_counts(sources):
    dataset = build_emoji_dataset(sources)
    train = dataset["train"]
    assert train.column_names == ["image", "label", "style", "code_point", "name"]
    assert train.features["label"].names == list(EMOJI_CATEGORIES) and len(EMOJI_CATEGORIES) == 10
    assert train.features["style"].names == list(EMOJI_STYLES) == ["noto", "twemoji", "openmoji"]
    num_images = len(FAKE_EMOJI) + 2  # two skin tones
    assert sum(len(part) for part in dataset.values()) == 2 * num_images
    rows = [row for part in dataset.values() for row in part.remove_columns("image")]
    thumbs = next(row for row in rows if row["code_point"] == "1F44D-1F3FF")
    assert thumbs["name"] == "EMOJI 1F44D: dark skin tone"
    assert EMOJI_CATEGORIES[thumbs["label"]] == "People & Body"
    assert {EMOJI_CATEGORIES[row["label"]] for row in rows if row["code_point"] == "1F3FB"} == {"Component"}


def test_split_by_base_emoji(sources):
    dataset = build_emoji_dataset(sources)
    assert len(dataset["train"]) and len(dataset["test"])
    # every style of an emoji in one split ...
    styles = defaultdict(set)
    for split, part in dataset.items():
        for code in part["code_point"]:
            styles[code].add(split)
    assert all(len(splits) == 1 for splits in styles.values())
    # ... and skin-tone variants with their base emoji, as `is_test_emoji` of the base says
    split = _split_of(dataset)
    assert split["1F44D-1F3FB"] == split["1F44D-1F3FF"] == split["1F44D"] == "test"
    for unified, _, _ in FAKE_EMOJI:
        assert split[unified] == ("test" if is_test_emoji(unified) else "train")


def test_split_assignment_is_stable_and_about_a_tenth():
    codes = [f"{c:X}" for c in range(0x1F300, 0x1F300 + 3000)]
    share = np.mean([is_test_emoji(code) for code in codes])
    assert 0.08 < share < 0.12
    assert is_test_emoji("2764-FE0F") == is_test_emoji("2764") == is_test_emoji("2764-fe0f")
    assert [is_test_emoji(code) for code in ("1F600", "1F44D", "1F43C", "1F1EF-1F1F5")] == [False, True, True, False]


def test_normalize_code_point():
    assert normalize_code_point("1f3c3-200d-2640-fe0f") == "1F3C3-200D-2640"
    assert normalize_code_point("0023-FE0F-20E3") == "0023-20E3"


def test_emoji_without_image_is_skipped(tmp_path, caplog):
    sources = {"noto": write_fake_datasource(tmp_path / "noto", "noto", missing=("1F600",))}
    dataset = build_emoji_dataset(sources)
    codes = _split_of(dataset)
    assert "1F600" not in codes and "1F44D-1F3FB" in codes
    assert "1 of 10 emoji have no image" in caplog.text


def test_bad_sources():
    with pytest.raises(ValueError, match="apple"):
        build_emoji_dataset({"apple": "."})
    with pytest.raises(ValueError, match="emoji-datasource"):
        build_emoji_dataset({"openmoji": "."})


def test_openmoji_svgs_matched_without_fe0f(sources, tmp_path):
    pytest.importorskip("cairosvg")
    folder = tmp_path / "openmoji" / "package" / "color" / "svg"
    folder.mkdir(parents=True)
    square = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72"><rect x="18" y="18" width="36" height="36" fill="#0000ff"/></svg>'  # fmt: skip
    for name in ("1F600", "2764", "1F44D-1F3FB", "E000"):  # OpenMoji drops FE0F; E000 is an OpenMoji extra
        (folder / f"{name}.svg").write_text(square)
    dataset = build_emoji_dataset({**sources, "openmoji": folder.parent.parent})
    rows = [row for part in dataset.values() for row in part if EMOJI_STYLES[row["style"]] == "openmoji"]
    assert sorted(row["code_point"] for row in rows) == ["1F44D-1F3FB", "1F600", "2764-FE0F"]
    pixels = np.asarray(rows[0]["image"])
    assert rows[0]["image"].size == (64, 64)
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[32, 32]) == (0, 0, 255)


def test_missing_data_names_make_emoji(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQGEN_EMOJI_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="make emoji"):
        load_emoji("train")
    with pytest.raises(ValueError, match="make emoji"):
        load_image_dataset("emoji")
    with pytest.raises(ValueError, match="split"):
        load_emoji("validation")


def test_prepare_saves_card_and_loads_offline(sources, tmp_path, monkeypatch):
    tarballs = {}
    for style, root in sources.items():
        tarballs[style] = tmp_path / f"{style}.tgz"
        with tarfile.open(tarballs[style], "w:gz") as archive:
            archive.add(root, arcname="package")
    monkeypatch.setattr(emoji, "download_emoji_packages", lambda download_dir: tarballs)
    monkeypatch.setenv("HF_VQGEN_EMOJI_DIR", str(tmp_path / "cache"))
    folder = prepare_emoji()
    assert folder == tmp_path / "cache" / "dataset"
    card = (folder / "README.md").read_text()
    assert "CC BY 4.0" in card and "Apache License 2.0" in card and "emoji-datasource-google@16.0.0" in card
    train, test = load_emoji("train"), load_emoji("test")
    assert len(train) + len(test) == 2 * (len(FAKE_EMOJI) + 2)
    assert load_image_dataset("emoji").column_names == ["image", "label"]
    assert prepare_emoji() == folder  # already prepared: nothing to do
    assert not [path for path in folder.parent.iterdir() if path.name != "dataset"]  # no temporary folder left

    # a half-written or emptied folder is not "prepared": loading says so, preparing builds it again
    shutil.rmtree(folder / "test")
    with pytest.raises(ValueError, match="incomplete"):
        load_emoji("train")
    assert prepare_emoji() == folder and len(load_emoji("test")) == len(test)
    shutil.rmtree(folder)
    folder.mkdir()  # empty
    with pytest.raises(ValueError, match="incomplete"):
        load_emoji("train")
    prepare_emoji()
    assert len(load_emoji("train")) == len(train)


def test_npm_failure_shows_npms_own_message(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji.shutil, "which", lambda name: "/usr/bin/npm")

    def failing_npm(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="npm error code ENOTFOUND registry.npmjs.org")

    monkeypatch.setattr(emoji.subprocess, "run", failing_npm)
    with pytest.raises(ValueError, match="ENOTFOUND registry.npmjs.org"):
        emoji.download_emoji_packages(tmp_path / "downloads")


def test_tarball_integrity_is_checked(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for package in emoji.EMOJI_PACKAGES.values():
        (downloads / package.tarball).write_bytes(b"not the package")
    with pytest.raises(ValueError, match="integrity"):
        emoji.download_emoji_packages(downloads)
