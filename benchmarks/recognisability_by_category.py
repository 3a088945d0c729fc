#!/usr/bin/env python
"""Recognisability (mean top-1 identity probability of the shape network) per category and per style, for pipelines'
samples and for real train images and their reconstructions by each pipeline's own tokenizer, all with the classes
cycled evenly: which rows of a sample grid a person can name, and how far each is from its ceiling.

    python benchmarks/recognisability_by_category.py --pipelines pretrained/emoji-ar pretrained/emoji-diffusion \
        --num_samples 600

Samples are drawn with each pipeline's saved sampling defaults (as `pipe(class_labels=...)` with no other argument).
Writes benchmarks/results/<dataset>/recognisability_by_category.json and prints a table per label column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import (
    RESULTS,
    ROOT,
    class_sizes,
    classes_cycled,
    machine,
    recognisability_table,
    training_record,
    write_report,
)

from hf_vqgen import load_image_dataset, load_pipeline
from hf_vqgen.evaluation import evaluate_tokenizer, sample_images
from hf_vqgen.evaluation.features import extract_features, load_feature_extractor, load_split_images
from hf_vqgen.utils import portable_path


ASSETS = Path(__file__).resolve().parent / "assets"


def top1_probability(extractor, images: torch.Tensor) -> torch.Tensor:
    _, logits = extract_features(extractor, images, desc="Identity probabilities")
    if logits is None:
        raise SystemExit("The feature network has no classifier head: recognisability needs one.")
    return logits.softmax(dim=1).max(dim=1).values


def by_column(top1: torch.Tensor, labels: torch.Tensor, sizes: dict[str, int]) -> dict[str, list[float]]:
    """Mean of `top1` per class of each label column, the combined `labels` split as `combine_label_columns` made
    them (the last column varies fastest)."""
    means, rest = {}, labels.clone()
    for column, size in reversed(sizes.items()):
        values = rest % size
        means[column] = [
            float(top1[values == value].mean()) if (values == value).any() else None for value in range(size)
        ]
        rest = rest // size
    return dict(reversed(means.items()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", type=Path, nargs="+", required=True)
    parser.add_argument("--num_samples", type=int, default=600, help="Per pipeline, and real images (classes cycled).")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature_extractor", type=Path, default=ASSETS / "emoji_shape_classifier")
    parser.add_argument("--dataset_name", default=None, help="Default: the one the first pipeline was trained on.")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    record = training_record(args.pipelines[0])
    args.dataset_name = args.dataset_name or record.get("dataset")
    if args.dataset_name is None:
        parser.error(f"{args.pipelines[0]} has no model_card.json naming its dataset: pass --dataset_name")
    args.label_columns = record.get("hyperparameters", {}).get("label_columns") or ["label"]
    args.output = args.output or RESULTS / args.dataset_name / "recognisability_by_category.json"
    return args


def main() -> None:
    args = parse_args()
    extractor = load_feature_extractor(args.feature_extractor)
    sizes = class_sizes(args.dataset_name, args.label_columns)
    names = {
        column: load_image_dataset(args.dataset_name, label_column=column).features["label"].names
        for column in args.label_columns
    }
    combined = torch.tensor(
        load_image_dataset(args.dataset_name, split="train", label_column=args.label_columns)["label"]
    )
    rows_kept = classes_cycled(combined, args.num_samples, args.seed)
    real, real_labels = None, combined[rows_kept]
    sets, defaults = {}, {}
    for folder in args.pipelines:
        pipeline = load_pipeline(folder)
        defaults[portable_path(folder, ROOT)] = dict(pipeline.sampling_defaults)
        if real is None:  # at the first pipeline's image size
            size = (pipeline.vqvae.config.sample_size, pipeline.vqvae.config.in_channels)
            real = load_split_images(args.dataset_name, "train", *size)[rows_kept]
            sets["train images"] = by_column(top1_probability(extractor, real), real_labels, sizes)
        with torch.no_grad():
            reconstructions = evaluate_tokenizer(pipeline.vqvae, real.split(256), keep_reconstructions=True)[0]
        label = portable_path(folder, ROOT)
        sets[f"{label}: reconstructions"] = by_column(top1_probability(extractor, reconstructions), real_labels, sizes)
        images, _ = sample_images(pipeline, args.num_samples, args.batch_size, seed=args.seed)  # classes cycled
        sample_labels = torch.arange(args.num_samples) % pipeline.layout.num_classes
        sets[f"{label}: samples at its defaults"] = by_column(
            top1_probability(extractor, images), sample_labels, sizes
        )
    report = {
        "benchmark": "recognisability_by_category",
        "machine": machine(),
        "scored": [portable_path(folder, ROOT) for folder in args.pipelines],
        "settings": vars(args),
        "feature_extractor": portable_path(args.feature_extractor, ROOT),
        "sampling": defaults,  # each pipeline's saved defaults, as its samples were drawn
        "class_names": names,
        "rows": sets,
    }
    write_report(args.output, report, echo=False)
    for column in args.label_columns:
        print("\n" + recognisability_table(report, column))


if __name__ == "__main__":
    main()
