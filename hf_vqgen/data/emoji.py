"""Emoji images: Noto Color Emoji, Twemoji and OpenMoji, 64x64 RGB on white, labelled by emoji category.

`prepare_emoji()` (or `make emoji`, which runs `python -m hf_vqgen.data.emoji`) downloads three npm packages with
`npm pack`, checks each tarball against the sha512 integrity recorded in `EMOJI_PACKAGES`, renders every emoji of
the datasource's `emoji.json` (skin-tone variants included) in each style, and saves a `datasets.DatasetDict`
(`save_to_disk`, written to a temporary folder and renamed) with a dataset card naming the sources and their
licences. `load_emoji(split)` (and `load_image_dataset("emoji")`) then read it offline.

- Noto Color Emoji: the 64 px PNGs of `emoji-datasource-google` (Apache-2.0).
- Twemoji: the 64 px PNGs of `emoji-datasource-twitter` (CC-BY-4.0).
- OpenMoji: the colour SVGs of `openmoji` (CC-BY-SA-4.0), rendered to 64x64 with `cairosvg` (the `emoji` extra), a
  pure-Python wrapper over the libcairo already on the machine: no browser, no fonts, the same pixels every run.
  OpenMoji names its files by code point without the FE0F variation selector in places, so files are matched on
  normalised code points (`normalize_code_point`).

Columns: `image` (PIL, RGB, 64x64: alpha composited on white), `label` (the emoji's category, a `ClassLabel` over
`EMOJI_CATEGORIES`: the 10 groups of `emoji.json`, "Component" included although it holds only the 5 skin-tone
swatches), `style` (`ClassLabel` over `EMOJI_STYLES`), `code_point` (the datasource's `unified`, e.g. `"1F600"` or
`"1F44B-1F3FB"`, the same in every style) and `name`.

Splits: about `TEST_FRACTION` of the *base* emoji go to `test`, picked by the sha256 of the base code point, so all
styles of an emoji and all its skin-tone variants (near-duplicates) share a split, and an emoji keeps its split when
the sets change. Related but distinct emoji (man / woman / person variants, families) are assigned independently.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
from PIL import Image
from tqdm.auto import tqdm

from .image_modes import WHITE, to_model_mode


logger = logging.getLogger(__name__)

EMOJI = "emoji"
EMOJI_DIR_ENV = "HF_VQGEN_EMOJI_DIR"
EMOJI_DEFAULT_DIR = "~/.cache/hf_vqgen/emoji"
EMOJI_RESOLUTION = 64
TEST_FRACTION = 0.1
EMOJI_SPLITS = ("train", "test")
# emoji.json's categories in Unicode's group order (its categories.json)
EMOJI_CATEGORIES = (
    "Smileys & Emotion", "People & Body", "Component", "Animals & Nature", "Food & Drink",
    "Travel & Places", "Activities", "Objects", "Symbols", "Flags",
)  # fmt: skip
SKIN_TONES = {
    "1F3FB": "light skin tone",
    "1F3FC": "medium-light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone",
    "1F3FF": "dark skin tone",
}


@dataclass(frozen=True)
class EmojiPackage:
    """One npm package of emoji images: where its images lie inside the tarball's `package/` folder, and its terms."""

    name: str
    version: str
    integrity: str  # npm's sha512 integrity of the tarball
    images: str  # folder of the images inside `package/`
    license: str
    attribution: str

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"


EMOJI_PACKAGES = {
    "noto": EmojiPackage(
        "emoji-datasource-google",
        "16.0.0",
        "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
        "img/google/64",
        "Apache-2.0",
        "Noto Color Emoji images by Google, licensed under the Apache License 2.0",
    ),
    "twemoji": EmojiPackage(
        "emoji-datasource-twitter",
        "16.0.0",
        "sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
        "img/twitter/64",
        "CC-BY-4.0",
        "Twemoji graphics by Twitter, Inc and other contributors, licensed under CC BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/)",
    ),
    "openmoji": EmojiPackage(
        "openmoji",
        "17.0.0",
        "sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w==",
        "color/svg",
        "CC-BY-SA-4.0",
        "All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0",
    ),
}
EMOJI_STYLES = tuple(EMOJI_PACKAGES)
_DATASOURCE_SET = {"noto": "google", "twemoji": "twitter"}  # emoji.json's `has_img_<set>` flags
EMOJI_ATTRIBUTION = "\n".join(
    [f"- {style}: {p.attribution} (npm `{p.name}@{p.version}`)" for style, p in EMOJI_PACKAGES.items()]
    + ["Changes: composited on a white background at 64x64 pixels; OpenMoji rendered from SVG with cairosvg."]
)
EMOJI_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(EMOJI_CATEGORIES)),
        "style": datasets.ClassLabel(names=list(EMOJI_STYLES)),
        "code_point": datasets.Value("string"),
        "name": datasets.Value("string"),
    }
)


# helpers


def emoji_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder of the prepared data: `cache_dir`, else `$HF_VQGEN_EMOJI_DIR`, else `~/.cache/hf_vqgen/emoji`."""
    return Path(cache_dir or os.environ.get(EMOJI_DIR_ENV) or EMOJI_DEFAULT_DIR).expanduser()


def normalize_code_point(code_point: str) -> str:
    """`"1f3c3-200d-2640-fe0f"` -> `"1F3C3-200D-2640"`: uppercase, dash-separated, without the FE0F selector."""
    return "-".join(part for part in code_point.upper().replace("_", "-").split("-") if part and part != "FE0F")


def is_test_emoji(base_code_point: str, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether an emoji (given by its base code point, without skin tone) is in the test split: the first 8 bytes of
    the sha256 of its normalised code point, read as a fraction of 2**64, fall below `test_fraction`."""
    digest = hashlib.sha256(normalize_code_point(base_code_point).encode()).digest()
    return int.from_bytes(digest[:8], "big") < test_fraction * 2**64


def _on_white(image: Image.Image, resolution: int) -> Image.Image:
    """The package's image rule (`to_model_mode`: alpha composited on white) to RGB, then `resolution` x `resolution`."""
    rgb = to_model_mode(image, num_channels=3, background=WHITE)
    if rgb.size != (resolution, resolution):
        rgb = rgb.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return rgb


def _render_svg(path: Path, resolution: int) -> Image.Image:
    try:
        import cairosvg
    except ImportError as error:
        raise ImportError(
            "Rendering OpenMoji's SVGs needs cairosvg: `pip install -e '.[emoji]'` (or `make emoji`)."
        ) from error
    return Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), output_width=resolution, output_height=resolution)))


def _emoji_entries(emoji_json: Path) -> list[dict]:
    """Each emoji of a datasource's `emoji.json`, skin-tone variants as entries of their own, in file order."""
    entries = []
    for emoji in json.loads(emoji_json.read_text()):
        base = {"base": emoji["unified"], "category": emoji["category"], "name": emoji["name"] or emoji["short_name"]}
        entries.append({**emoji, **base})
        for tones, variant in (emoji.get("skin_variations") or {}).items():
            suffix = ", ".join(SKIN_TONES.get(tone, tone) for tone in tones.split("-"))
            entries.append({**variant, **base, "name": f"{base['name']}: {suffix}"})
    return entries


def _image_paths(style: str, root: Path, entries: list[dict]) -> list[tuple[dict, Path]]:
    """(entry, image file) for each emoji the style draws; emoji without a file are counted in the log."""
    folder = root / EMOJI_PACKAGES[style].images
    if style in _DATASOURCE_SET:
        flag = f"has_img_{_DATASOURCE_SET[style]}"
        found = [(entry, folder / entry["image"]) for entry in entries if entry.get(flag)]
    else:
        files = {normalize_code_point(path.stem): path for path in folder.glob("*.svg")}
        found = [
            (entry, files[code]) for entry in entries if (code := normalize_code_point(entry["unified"])) in files
        ]
    found = [(entry, path) for entry, path in found if path.is_file()]
    if len(found) < len(entries):
        logger.warning("%s: %d of %d emoji have no image.", style, len(entries) - len(found), len(entries))
    return found


# building


def build_emoji_dataset(
    sources: dict[str, str | os.PathLike],
    test_fraction: float = TEST_FRACTION,
    resolution: int = EMOJI_RESOLUTION,
) -> datasets.DatasetDict:
    """
    Render the emoji of extracted source packages into `train` and `test` splits.

    Args:
        sources (`dict[str, PathLike]`): Style (one of `EMOJI_STYLES`) -> the package's extracted `package/` folder.
            The emoji list comes from the first emoji-datasource package's `emoji.json`, so `"noto"` or `"twemoji"`
            must be among them; `"openmoji"` is optional.
        test_fraction (`float`, *optional*, defaults to 0.1): Share of base emoji in `test` (see `is_test_emoji`).
        resolution (`int`, *optional*, defaults to 64): Side length of the images.

    Returns:
        `datasets.DatasetDict` with `train` and `test`, columns as `EMOJI_FEATURES`, images RGB on white.
    """
    unknown = sorted(set(sources) - set(EMOJI_STYLES))
    if unknown:
        raise ValueError(f"`sources` keys must be among {EMOJI_STYLES}, got {unknown}.")
    datasource = next((style for style in EMOJI_STYLES if style in sources and style in _DATASOURCE_SET), None)
    if datasource is None:
        raise ValueError(f"`sources` needs an emoji-datasource package ('noto' or 'twemoji'), got {sorted(sources)}.")
    if not 0 <= test_fraction <= 1:
        raise ValueError(f"`test_fraction` must be in [0, 1], got {test_fraction}.")
    entries = _emoji_entries(Path(sources[datasource]) / "emoji.json")
    categories = sorted({entry["category"] for entry in entries} - set(EMOJI_CATEGORIES))
    if categories:
        raise ValueError(f"emoji.json has categories outside EMOJI_CATEGORIES: {categories}.")
    jobs = [
        (style, entry, path)
        for style in EMOJI_STYLES
        if style in sources
        for entry, path in _image_paths(style, Path(sources[style]), entries)
    ]
    rows = {split: {name: [] for name in EMOJI_FEATURES} for split in EMOJI_SPLITS}
    for style, entry, path in tqdm(jobs, desc="Rendering emoji"):
        image = _render_svg(path, resolution) if path.suffix == ".svg" else Image.open(path)
        buffer = io.BytesIO()
        _on_white(image, resolution).save(buffer, format="PNG")
        split = rows["test" if is_test_emoji(entry["base"], test_fraction) else "train"]
        split["image"].append({"bytes": buffer.getvalue(), "path": None})
        split["label"].append(EMOJI_CATEGORIES.index(entry["category"]))
        split["style"].append(EMOJI_STYLES.index(style))
        split["code_point"].append(entry["unified"].upper())
        split["name"].append(entry["name"])
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_dict(columns, features=EMOJI_FEATURES) for split, columns in rows.items()}
    )


# downloading


def _digest(path: Path, algorithm: str) -> bytes:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _integrity(path: Path) -> str:
    """npm's integrity string of a file: `sha512-<base64 digest>`."""
    return "sha512-" + base64.b64encode(_digest(path, "sha512")).decode()


def download_emoji_packages(download_dir: str | os.PathLike) -> dict[str, Path]:
    """Style -> tarball of its package in `download_dir`, fetched with `npm pack` if absent, integrity checked."""
    download_dir = Path(download_dir)
    download_dir.mkdir(parents=True, exist_ok=True)
    tarballs = {}
    for style, package in EMOJI_PACKAGES.items():
        tarball = download_dir / package.tarball
        if not tarball.is_file():
            if shutil.which("npm") is None:
                raise ValueError(f"Downloading {package.name} needs npm, or put {package.tarball} in {download_dir}.")
            with tempfile.TemporaryDirectory(dir=download_dir) as partial:
                logger.info("Downloading %s@%s with npm pack.", package.name, package.version)
                spec = f"{package.name}@{package.version}"
                done = subprocess.run(
                    ["npm", "pack", spec, "--pack-destination", partial], capture_output=True, text=True
                )
                if done.returncode != 0:  # npm's own words say why (offline, proxy, registry, disk)
                    raise ValueError(
                        f"`npm pack {spec}` failed (exit {done.returncode}):\n{(done.stderr or done.stdout).strip()}\n"
                        f"Or download {package.tarball} elsewhere and put it in {download_dir}."
                    )
                os.replace(Path(partial) / package.tarball, tarball)
        integrity = _integrity(tarball)
        if integrity != package.integrity:
            raise ValueError(
                f"{tarball} has integrity {integrity}, expected {package.integrity}: delete it and run `make emoji`."
            )
        tarballs[style] = tarball
    return tarballs


def _extract(tarball: Path, style: str, destination: Path) -> Path:
    """Extract `emoji.json` and the style's image folder from a package tarball; return its `package/` folder."""
    wanted = ("package/emoji.json", f"package/{EMOJI_PACKAGES[style].images}/")
    with tarfile.open(tarball, "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.startswith(wanted)]
        archive.extractall(destination, members=members, filter="data")
    return destination / "package"


# preparing and loading


def _dataset_card(dataset: datasets.DatasetDict, tarballs: dict[str, Path]) -> str:
    counts = {
        split: Counter(zip(part["style"], part["label"], strict=True)) for split, part in dataset.items()
    }  # (style, label) -> images
    sources = "\n".join(
        f"| {style} | `{p.name}@{p.version}` | {p.license} | `{p.integrity}` | `{_digest(tarballs[style], 'sha256').hex()}` |"
        for style, p in EMOJI_PACKAGES.items()
        if style in tarballs
    )
    head = "| category | " + " | ".join(f"{s} {split}" for split in EMOJI_SPLITS for s in EMOJI_STYLES) + " |"
    table = [head, "|---" * (1 + len(EMOJI_SPLITS) * len(EMOJI_STYLES)) + "|"]
    for label, category in enumerate(EMOJI_CATEGORIES):
        cells = [str(counts[split][(s, label)]) for split in EMOJI_SPLITS for s in range(len(EMOJI_STYLES))]
        table.append(f"| {category} | " + " | ".join(cells) + " |")
    sizes = ", ".join(f"{split}: {len(part)}" for split, part in dataset.items())
    return f"""---
license: other
license_name: apache-2.0 (noto), cc-by-4.0 (twemoji), cc-by-sa-4.0 (openmoji)
pretty_name: Emoji 64x64 (Noto Color Emoji, Twemoji, OpenMoji)
size_categories: 10K<n<100K
---
# Emoji 64x64

Every emoji of the emoji-datasource `emoji.json` (skin-tone variants included) in three styles, RGB 64x64 on
white, made by `python -m hf_vqgen.data.emoji` (`make emoji`). Columns: `image`, `label` (category), `style`,
`code_point`, `name`. The `test` split holds about {TEST_FRACTION:.0%} of the base emoji, chosen by the sha256 of the
base code point; all styles and skin tones of an emoji share a split. Images: {sizes}.

## Sources

| style | npm package | licence | integrity | sha256 |
|---|---|---|---|---|
{sources}

## Licences and attribution

Each image keeps the licence of its style (column `style`):

{EMOJI_ATTRIBUTION}

## Images per category, style and split

{chr(10).join(table)}
"""


# written last into a prepared folder: a folder without it (a copy or a write cut short) is not a dataset
COMPLETE_MARKER = ".complete"


def is_prepared(folder: Path) -> bool:
    """`folder` holds a whole prepared dataset: its completion marker, and every split the marker counts."""
    marker = folder / COMPLETE_MARKER
    if not marker.is_file() or not (folder / "dataset_dict.json").is_file():
        return False
    try:
        rows = json.loads(marker.read_text())["rows"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return all((folder / split / "dataset_info.json").is_file() for split in rows)


def prepare_emoji(cache_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """
    Download, check, render and save the emoji dataset once; return the saved dataset's folder.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): Defaults to `$HF_VQGEN_EMOJI_DIR` or `~/.cache/hf_vqgen/emoji`.
            Tarballs go to `<cache_dir>/downloads/`, the `datasets` folder (with its `README.md` card) to
            `<cache_dir>/dataset/`.
        force (`bool`, *optional*, defaults to `False`): Rebuild even if the dataset exists (tarballs are reused).
    """
    root = emoji_dir(cache_dir)
    final = root / "dataset"
    if is_prepared(final) and not force:
        logger.info("Emoji dataset already prepared at %s.", final)
        return final
    if final.exists() and not force:
        logger.warning("%s holds an incomplete emoji dataset (no %s): preparing it again.", final, COMPLETE_MARKER)
    root.mkdir(parents=True, exist_ok=True)
    tarballs = download_emoji_packages(root / "downloads")
    with tempfile.TemporaryDirectory(dir=root) as work:
        sources = {style: _extract(tarball, style, Path(work) / style) for style, tarball in tarballs.items()}
        dataset = build_emoji_dataset(sources)
        partial = Path(work) / "dataset"
        dataset.save_to_disk(str(partial))
        (partial / "README.md").write_text(_dataset_card(dataset, tarballs))
        (partial / COMPLETE_MARKER).write_text(json.dumps({"rows": {k: len(v) for k, v in dataset.items()}}))  # last
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    return final


def load_emoji(split: str = "train", cache_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """A split (`"train"` or `"test"`) of the dataset `prepare_emoji` saved, read offline (memory-mapped)."""
    if split not in EMOJI_SPLITS:
        raise ValueError(f"The emoji dataset has splits {EMOJI_SPLITS}, got split={split!r}.")
    folder = emoji_dir(cache_dir) / "dataset"
    if not is_prepared(folder):
        state = "is incomplete (an interrupted or partial copy)" if folder.exists() else "is not prepared"
        raise ValueError(
            f"The emoji dataset in {folder} {state}: run `make emoji` (or `python -m hf_vqgen.data.emoji`), which "
            f"prepares it again, or point ${EMOJI_DIR_ENV} at a prepared folder."
        )
    return datasets.load_from_disk(str(folder))[split]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Prepare the emoji dataset (see hf_vqgen/data/emoji.py).")
    parser.add_argument("--cache_dir", default=None, help=f"defaults to ${EMOJI_DIR_ENV} or {EMOJI_DEFAULT_DIR}")
    parser.add_argument("--force", action="store_true", help="rebuild even if the dataset exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    start = time.perf_counter()
    folder = prepare_emoji(args.cache_dir, force=args.force)
    print(f"Emoji dataset at {folder} ({time.perf_counter() - start:.0f} s); card: {folder / 'README.md'}")


if __name__ == "__main__":
    main()
