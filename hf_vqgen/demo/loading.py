"""The web demo's pipelines (`examples/app.py`), without Gradio: each pipeline loaded with its class names (read from
its model card) and test images to pick from, grouped by dataset so that AR and diffusion can be compared."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
from huggingface_hub import hf_hub_download, metadata_load
from PIL import ImageDraw

from ..data.image_modes import to_model_mode
from ..data.registry import DATASETS
from ..pipelines import load_pipeline
from ..pipelines.hub_resolution import resolve_pretrained_path


NUM_GALLERY_IMAGES = 10
HUB_DATASET_NAMES = {entry.hub_id: name for name, entry in DATASETS.items() if entry.hub_id}


class DemoInputError(ValueError):
    """Input the demo cannot use; the message says what was wrong and what to do, and is shown to the user."""


# classes


@dataclass(frozen=True)
class ClassChoices:
    """How a user picks a class: from one list of names, or from two (emoji category x style) whose combination is
    the class `index_1 * len(levels[1]) + index_2`, as `hf_vqgen.data.combine_label_columns` numbers them."""

    names: tuple[str, ...]  # the name of each class index ("Animals & Nature / twemoji")
    levels: tuple[tuple[str, ...], ...]  # () for an unconditional prior, else one or two lists of choices
    level_labels: tuple[str, ...]  # what each list is called in the page ("class"; "category", "style")

    def any_choice(self, level: int) -> str:
        """The choice that cycles through every value of `level` over the batch."""
        return f"(every {self.level_labels[level]})"

    def class_labels(self, selections: list[str | None], batch_size: int) -> list[int] | None:
        """Class index of each sample: the selected value of each level, or every value in turn for `any_choice`."""
        if not self.levels:
            return None
        options = []
        for level, values in enumerate(self.levels):
            selected = selections[level] if level < len(selections) else None
            if selected in (None, "", self.any_choice(level)):
                options.append(range(len(values)))
            elif selected in values:
                options.append([values.index(selected)])
            else:
                raise DemoInputError(f"Unknown {self.level_labels[level]} {selected!r}; pick one of the list.")
        combinations = list(itertools.product(*options))
        labels = []
        for i in range(batch_size):
            indices = combinations[i % len(combinations)]
            labels.append(indices[0] * len(self.levels[1]) + indices[1] if len(indices) == 2 else indices[0])
        return labels


def class_choices(num_classes: int, card: dict | None = None, id2label: dict | None = None) -> ClassChoices:
    """The class names of a prior with `num_classes` classes: those its training run recorded from the data
    (`pipeline.id2label`), else its model card context's (`model_card.json`), else those of a known dataset (for
    pipelines saved before the names were recorded: Fashion-MNIST; emoji by its `--label_columns`), else "class i".
    Names of the form "a / b" covering every combination of two lists become two lists (category and style)."""
    if not num_classes:
        return ClassChoices((), (), ())
    card = card or {}
    hyperparameters = card.get("hyperparameters") or {}
    dataset = card.get("dataset") or hyperparameters.get("dataset_name")
    columns = hyperparameters.get("label_columns") or ["label"]
    recorded = [id2label[i] for i in range(num_classes)] if id2label else None
    candidates = [recorded, card.get("class_names"), (card.get("facts") or {}).get("class_names")]
    if dataset in DATASETS and columns == ["label"]:  # a named dataset's own class names
        candidates.append(DATASETS[dataset].class_names)
    names = next((tuple(c) for c in candidates if c is not None and len(c) == num_classes), None)
    names = names or tuple(f"class {i}" for i in range(num_classes))
    parts = [name.split(" / ") for name in names]
    first = tuple(dict.fromkeys(p[0] for p in parts if len(p) == 2))
    second = tuple(dict.fromkeys(p[1] for p in parts if len(p) == 2))
    if len(first) > 1 and len(second) > 1 and list(names) == [f"{a} / {b}" for a in first for b in second]:
        meaning = DATASETS[dataset].label_meaning if dataset in DATASETS else "class"
        labels = tuple(meaning if c == "label" else c for c in columns) if len(columns) == 2 else ("class", "variant")
        return ClassChoices(names, (first, second), labels)
    return ClassChoices(names, (names,), ("class",))


# loading


@dataclass
class DemoPipeline:
    """A loaded pipeline and what the page needs to know about it."""

    name: str  # shown in the page: "fashion-mnist-ar (AR)"
    pipeline: object  # a `VQGenPipeline` or `DiscreteDiffusionPipeline`
    dataset: str  # AR and diffusion pipelines of the same dataset are shown side by side
    classes: ClassChoices
    test_images: list[PIL.Image.Image] = field(default_factory=list)

    @property
    def has_reverse_process(self) -> bool:
        """Steps, frames of the reverse process and inpainting: what a diffusion pipeline's page offers."""
        return self.pipeline.has_reverse_process

    @property
    def resolution(self) -> int:
        return self.pipeline.vqvae.config.sample_size

    @property
    def num_channels(self) -> int:
        return self.pipeline.vqvae.config.in_channels

    @property
    def grid_height(self) -> int:
        return self.pipeline.layout.grid_height

    @property
    def max_steps(self) -> int:
        return self.pipeline.scheduler.config.num_train_timesteps if self.has_reverse_process else 0


def read_card(folder: str | os.PathLike, name_or_path: str | None = None) -> dict:
    """The model card context of a pipeline folder (`model_card.json`), else what its README's metadata says; for a
    Hub repo whose snapshot lacks the context, the context is fetched on its own (nothing when that fails)."""
    path = Path(folder) / "model_card.json"
    if not path.is_file() and name_or_path is not None and not Path(name_or_path).is_dir():
        try:
            path = Path(hf_hub_download(str(name_or_path), "model_card.json"))
        except Exception:  # no context in the repo, or offline: fall back to the README
            pass
    if path.is_file():
        return json.loads(path.read_text())
    readme = Path(folder) / "README.md"
    metadata = metadata_load(readme) if readme.is_file() else None
    if not metadata:
        return {}
    hub_datasets = metadata.get("datasets") or []
    dataset = HUB_DATASET_NAMES.get(hub_datasets[0], hub_datasets[0]) if hub_datasets else None
    return {"dataset": dataset, "class_names": metadata.get("class_names")}


def load_demo_pipelines(sources: list[str]) -> list[DemoPipeline]:
    """Each of `sources` (a folder or a Hub repo id), with its class names and test images."""
    entries = []
    for source in sources:
        folder, _ = resolve_pretrained_path(source, {})
        pipeline = load_pipeline(folder)
        card = read_card(folder, source)
        kind = pipeline.kind_label
        # reverse-process steps report through the step callback; the AR loop's tqdm bar is what Gradio can follow
        pipeline.set_progress_bar_config(disable=pipeline.has_reverse_process)
        config = pipeline.vqvae.config
        dataset = card.get("dataset") or f"{config.sample_size}x{config.sample_size}x{config.in_channels} images"
        name = f"{Path(str(source).rstrip('/')).name} ({kind})"
        if any(entry.name == name for entry in entries):
            name = f"{source} ({kind})"
        classes = class_choices(pipeline.layout.num_classes, card, pipeline.id2label)
        test_images = gallery_images(folder, card.get("dataset"), config.sample_size, config.in_channels)
        entries.append(DemoPipeline(name, pipeline, dataset, classes, test_images))
    share_galleries(entries)
    return entries


def share_galleries(entries: list[DemoPipeline]) -> None:
    """A pipeline without test images takes those of another of the same dataset and image size (a shipped AR /
    diffusion pair keeps its test images in one folder), in place."""
    for entry in entries:
        if entry.test_images:
            continue
        size = (entry.resolution, entry.resolution)
        channels = entry.pipeline.vqvae.config.in_channels
        for other in entries:
            if (
                other.dataset == entry.dataset
                and other.test_images
                and other.test_images[0].size == size
                and other.pipeline.vqvae.config.in_channels == channels
            ):
                entry.test_images = other.test_images
                break


def gallery_images(folder, dataset: str | None, resolution: int, num_channels: int) -> list[PIL.Image.Image]:
    """Test images to pick from: the pipeline folder's `test_images/*.png`, else the registered dataset's gallery
    (Fashion-MNIST: one test image per class, if its files are here), else (a registered dataset without one here, or
    no recorded dataset) a few drawn shapes; empty for another dataset (the user uploads an image)."""
    files = sorted((Path(folder) / "test_images").glob("*.png"))[:NUM_GALLERY_IMAGES]
    if files:
        return [to_model_mode(PIL.Image.open(file), num_channels) for file in files]  # alpha on white
    registered = DATASETS.get(dataset) if dataset else None
    if registered is not None and registered.gallery is not None:
        images = registered.gallery()
        if images:
            return images
    if dataset is None or (registered is not None and registered.gallery is not None):
        return synthetic_images(resolution, num_channels)
    return []


def synthetic_images(resolution: int, num_channels: int) -> list[PIL.Image.Image]:
    """A few light shapes on black (Fashion-MNIST's look): something to complete when no test images are shipped."""
    size, images = resolution, []
    for shape in ("rectangle", "ellipse", "triangle", "bars"):
        image = PIL.Image.new("L", (size, size), 0)
        draw, a, b = ImageDraw.Draw(image), size // 5, size - 1 - size // 5
        if shape == "rectangle":
            draw.rectangle((a, a, b, b), fill=200)
        elif shape == "ellipse":
            draw.ellipse((a, a, b, b), fill=230)
        elif shape == "triangle":
            draw.polygon([(size // 2, a), (a, b), (b, b)], fill=180)
        else:
            draw.rectangle((a, a, a + size // 5, b), fill=220)
            draw.rectangle((b - size // 5, a, b, b), fill=220)
        images.append(image.convert("RGB") if num_channels == 3 else image)
    return images
