"""Local image folders, scanned and checked by us before they become a `datasets.Dataset`.

`datasets`' own `imagefolder` loader drops the label column of a whole split when one folder is nested differently
and skips symbolic links without a word; here the folder is walked once (symbolic links followed, loops cut), what
was found and what was skipped is logged, and any layout that could be misread is refused with the paths at fault.

Supported layouts (`<split>` is a folder named `train`, `validation` or `test`, or one of `datasets`' aliases such as
`val`, `dev`, `eval`; any other folder name is a class):

- `root/<class>/<image>`: one folder of all images, labelled by class folder; a tenth of them (chosen by path hash,
  the same on every machine) become the `test` split, the rest `train`;
- `root/<split>/<class>/<image>`: several splits, labelled; label ids follow the sorted class names of all splits;
- `root/<image>` or `root/<split>/<image>`: unlabelled (`root/<image>` split as `root/<class>/<image>` is).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from PIL import Image

from ..utils import reject_missing_folder  # noqa: F401 (re-exported)


logger = logging.getLogger(__name__)

_COMMON_EXTENSIONS = (
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff", ".tga",
    ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".qoi", ".avif", ".jp2", ".j2k", ".jpx", ".pcx", ".sgi", ".psd",
)  # fmt: skip
IMAGE_EXTENSIONS = frozenset(
    ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and ext in _COMMON_EXTENSIONS
)
SPLIT_FOLDERS = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "test": "test", "testing": "test", "eval": "test", "evaluation": "test",
}  # fmt: skip  # the folder names `datasets`' imagefolder reads as splits
SPLIT_ORDER = ("train", "validation", "test")
LAYOUTS = (
    "expected root/<class>/<image>, root/<split>/<class>/<image>, root/<image> or root/<split>/<image>, "
    "with <split> one of train, validation, test"
)
HIDDEN = "hidden"


def _listing(paths: list[str], limit: int = 5) -> str:
    shown = ", ".join(str(path) for path in paths[:limit])
    return shown if len(paths) <= limit else f"{shown}, ... ({len(paths)} in all)"


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class ImageFolderScan:
    """What `scan_image_folder` found: `splits` maps a split to its sorted `(path, class name or None)` pairs,
    `class_names` are the sorted classes of all splits (empty when unlabelled), `skipped` maps a reason to paths."""

    root: Path
    splits: dict[str, list[tuple[str, str | None]]]
    class_names: list[str]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def log(self) -> None:
        for split, rows in self.splits.items():
            counts = Counter(name for _, name in rows)
            classes = f", {len(counts)} class(es) ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})"
            logger.info(
                "Image folder %s, split %r: %d image(s)%s.",
                self.root,
                split,
                len(rows),
                classes if self.class_names else "",
            )
        for reason, paths in self.skipped.items():
            level = logging.INFO if reason == HIDDEN else logging.WARNING
            logger.log(
                level, "Image folder %s: skipped %d path(s), %s: %s.", self.root, len(paths), reason, _listing(paths)
            )

    def to_dataset(self, split: str) -> datasets.Dataset:
        """The split as a `datasets.Dataset`: `image` (decoded lazily from the paths) and, if labelled, `label`."""
        if split not in self.splits:
            raise ValueError(f"Image folder {self.root} has no {split!r} split; it has {list(self.splits)}.")
        rows = self.splits[split]
        data, features = {"image": [path for path, _ in rows]}, {"image": datasets.Image()}
        if self.class_names:
            label_of = {name: i for i, name in enumerate(self.class_names)}
            data["label"] = [label_of[name] for _, name in rows]
            features["label"] = datasets.ClassLabel(names=self.class_names)
        return datasets.Dataset.from_dict(data, features=datasets.Features(features))


# walking


def _walk(root: Path) -> tuple[list[tuple[str, ...]], dict[str, list[str]], list[str]]:
    """Image paths relative to `root` (as parts), skipped paths by reason, and folders named like image files."""
    images, skipped, image_named_folders = [], defaultdict(list), []
    ancestors = {str(root): frozenset()}  # real paths above each folder: a link back up is a loop, not a folder

    def unreadable(error: OSError) -> None:
        skipped["unreadable folder"].append(str(error.filename))

    for folder, subfolders, files in os.walk(root, onerror=unreadable, followlinks=True):
        above = ancestors.pop(folder, frozenset()) | {os.path.realpath(folder)}
        kept = []
        for name in sorted(subfolders):
            path = os.path.join(folder, name)
            if name.startswith("."):
                skipped[HIDDEN].append(path)
            elif _is_image_name(name):
                image_named_folders.append(path)
            elif os.path.realpath(path) in above:
                skipped["symbolic link loop"].append(path)
            else:
                ancestors[path] = above
                kept.append(name)
        subfolders[:] = kept
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.startswith("."):
                skipped[HIDDEN].append(path)
            elif not _is_image_name(name):
                skipped["no image extension"].append(path)
            elif not os.path.exists(path):
                skipped["broken symbolic link"].append(path)
            else:
                images.append(Path(path).relative_to(root).parts)
    return sorted(images), dict(skipped), image_named_folders


# layout


def _split_groups(
    root: Path, images: list[tuple[str, ...]], problems: list[str]
) -> dict[str, tuple[Path, list[tuple[str, ...]]]]:
    """Images grouped by split: its folder and the parts below it; no split folders means one `train` split."""
    top_folders = sorted({parts[0] for parts in images if len(parts) > 1})
    split_folders = [name for name in top_folders if name.lower() in SPLIT_FOLDERS]
    if not split_folders:
        return {"train": (root, images)}
    others = [str(root / name) for name in top_folders if name not in split_folders]
    loose = [str(root.joinpath(*parts)) for parts in images if len(parts) == 1]
    if others or loose:
        problems.append(
            f"split folders ({', '.join(split_folders)}) next to other folders or images, which would be read as "
            f"neither: {_listing(others + loose)}"
        )
    by_split = defaultdict(list)
    for name in split_folders:
        by_split[SPLIT_FOLDERS[name.lower()]].append(name)
    for split, names in by_split.items():
        if len(names) > 1:
            problems.append(f"several folders for the {split!r} split: {', '.join(str(root / n) for n in names)}")
    groups = {split: (root / by_split[split][0], []) for split in SPLIT_ORDER if split in by_split}
    for parts in images:
        if parts[0] in split_folders:
            groups[SPLIT_FOLDERS[parts[0].lower()]][1].append(parts[1:])
    return groups


def _classify(folder: Path, images: list[tuple[str, ...]], problems: list[str]) -> list[tuple[str, str | None]]:
    """`(path, class name or None)` for one split's images, or a problem if their depths disagree."""
    deeper = [str(folder.joinpath(*parts)) for parts in images if len(parts) > 2]
    if deeper:
        problems.append(f"images below the class folders of {folder}: {_listing(deeper)}")
    flat = [parts for parts in images if len(parts) == 1]
    in_classes = [parts for parts in images if len(parts) == 2]
    if flat and in_classes:
        problems.append(
            f"images at mixed depths in {folder}: {len(flat)} directly in it "
            f"({_listing([str(folder / p[0]) for p in flat], 3)}) and {len(in_classes)} in class folders "
            f"({_listing(sorted({str(folder / p[0]) for p in in_classes}), 3)})"
        )
    return [(str(folder.joinpath(*parts)), parts[0] if len(parts) == 2 else None) for parts in flat + in_classes]


def scan_image_folder(root: str | os.PathLike) -> ImageFolderScan:
    """
    Walk a local image folder (following symbolic links, cutting loops) and check its layout.

    Raises:
        `ValueError`: naming the paths at fault and the expected layout, if the folder has no image files, has folders
        named like image files, images at mixed depths or below class folders, split folders next to other content,
        or some splits labelled and others not.
    """
    root = Path(root).expanduser().absolute()
    images, skipped, image_named_folders = _walk(root)
    if not images:
        found = "; ".join(f"{len(paths)} path(s), {reason}: {_listing(paths, 3)}" for reason, paths in skipped.items())
        raise ValueError(f"Image folder {root} has no image files{f' (skipped {found})' if found else ''}; {LAYOUTS}.")
    problems = []
    if image_named_folders:
        problems.append(f"folders named like image files: {_listing(image_named_folders)}")
    groups = _split_groups(root, images, problems)
    splits = {split: _classify(folder, rows, problems) for split, (folder, rows) in groups.items()}
    labelled = {split: any(name is not None for _, name in rows) for split, rows in splits.items()}
    if len(set(labelled.values())) > 1:
        problems.append(
            f"labelled splits ({', '.join(s for s, v in labelled.items() if v)}) next to unlabelled ones "
            f"({', '.join(s for s, v in labelled.items() if not v)})"
        )
    if problems:
        raise ValueError(
            f"Image folder {root} has a layout that would be misread; " + "; ".join(problems) + f". {LAYOUTS}."
        )
    class_names = sorted({name for rows in splits.values() for _, name in rows if name is not None})
    if list(groups) == ["train"] and Path(groups["train"][0]) == root:  # no split folders at all
        splits = hold_out_test_split(root, splits["train"])
    return ImageFolderScan(root, splits, class_names, skipped)


HELD_OUT_FRACTION = 0.1


def hold_out_test_split(root: Path, rows: list[tuple[str, str | None]]) -> dict[str, list]:
    """A folder with one split (`root/<class>/*`, `root/*`) gets a `test` split: the `HELD_OUT_FRACTION` of its
    images (at least one) whose relative paths hash lowest (sha256), so the choice is the same on every machine and
    an image keeps its split when others are added. Logged; a folder of one image stays train only."""
    if len(rows) < 2:
        return {"train": rows}

    def rank(row) -> str:
        return hashlib.sha256(os.path.relpath(row[0], root).encode()).hexdigest()

    count = max(1, round(HELD_OUT_FRACTION * len(rows)))
    held = set(sorted(rows, key=rank)[:count])
    logger.info(
        "Image folder %s has no split folders: %d of its %d images (%.0f%%, chosen by the hash of their paths) are "
        "held out as the 'test' split; add train/ and test/ folders to choose them yourself.",
        root, count, len(rows), 100 * count / len(rows),
    )  # fmt: skip
    return {"train": [row for row in rows if row not in held], "test": [row for row in rows if row in held]}


def load_image_folder(root: str | os.PathLike, split: str = "train") -> datasets.Dataset:
    """`scan_image_folder(root)`, logged, as the `split` split (`image` and, if labelled, `label`)."""
    scan = scan_image_folder(root)
    scan.log()
    return scan.to_dataset(split)
