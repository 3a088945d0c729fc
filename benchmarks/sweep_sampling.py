#!/usr/bin/env python
"""Sampling settings of a trained pipeline (either prior) vs quality, each setting on the same samples in every
feature space that ships for its dataset (e.g. emoji: `emoji_classifier`, global pooling over category x style, and
`emoji_shape_classifier`, emoji identities with a layout-keeping embedding): FID, precision / recall,
recognisability, and how often the samples show the category (and style) they were asked for.

    python benchmarks/sweep_sampling.py --pipeline pretrained/emoji-ar --num_samples 2000 \
        --settings "" "temperature=0.9" "temperature=0.9,top_k=100" "guidance_scale=2"
    python benchmarks/sweep_sampling.py --pipeline pretrained/emoji-diffusion \
        --settings "num_inference_steps=16" "num_inference_steps=32,temperature=0.8"

A setting is `name=value` pairs for the pipeline's call ("" = its saved defaults), or for its scheduler's config
(e.g. diffusion's remasking noise `choice_temperature=2`: the scheduler is rebuilt with it for that setting); seed 0,
classes cycled evenly (`--class_mix reference`: in the test split's proportions).
Appends a row per setting (naming the pipeline, the resolved settings and the command) to `--output` (default
benchmarks/results/<dataset>/sampling_sweep.json), written after each row; prints a line per row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import RESULTS, ROOT, append_row, class_sizes, training_record

from hf_vqgen import load_image_dataset, load_pipeline
from hf_vqgen.evaluation import head_agreement, sample_images, score_images
from hf_vqgen.evaluation.features import load_feature_extractor
from hf_vqgen.pipelines.token_pipeline import split_scheduler_settings
from hf_vqgen.utils import command_line, parse_settings, portable_path


ASSETS = Path(__file__).resolve().parent / "assets"


def parse_setting(text: str) -> dict:
    """`"temperature=0.9,top_k=100"` -> {"temperature": 0.9, "top_k": 100} (ints stay ints)."""
    try:
        return parse_settings([part for part in text.split(",") if part.strip()], "--settings")
    except ValueError as error:
        raise SystemExit(str(error)) from None


def feature_networks(dataset_name: str) -> list[Path]:
    """Every feature network that ships for `dataset_name` (benchmarks/assets/<dataset>_*classifier)."""
    found = sorted(ASSETS.glob(f"{dataset_name}_*classifier")) + sorted(ASSETS.glob(f"{dataset_name}_classifier"))
    return list(dict.fromkeys(found))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="A saved pipeline (folder or repo id).")
    parser.add_argument(
        "--settings", nargs="+", default=[""], help='Sampling settings, e.g. "temperature=0.9,top_k=50".'
    )
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default=None, help="A name for the pipeline in the rows (default: its path).")
    parser.add_argument(
        "--class_mix", default="even", choices=("even", "reference"),
        help="Classes asked for: cycled evenly, or in the reference (test) split's proportions, so that FID compares "
        "like with like for a prior that follows its condition (emoji's test split is mostly People & Body).",
    )  # fmt: skip
    parser.add_argument("--dataset_name", default=None, help="Default: the one the pipeline was trained on.")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.dataset_name = args.dataset_name or training_record(args.pipeline).get("dataset")
    if args.dataset_name is None:
        parser.error(f"{args.pipeline} has no model_card.json naming its dataset: pass --dataset_name")
    args.output = args.output or RESULTS / args.dataset_name / "sampling_sweep.json"
    args.settings = [parse_setting(text) for text in args.settings]
    return args


def reference_class_mix(dataset_name: str, columns: list[str], num_samples: int, seed: int) -> list[int]:
    """`num_samples` class ids in the test split's proportions: its labels (combined over `columns`, as the prior's
    class token) repeated and put in a seeded random order, so that every batch holds a mix."""
    labels = torch.tensor(load_image_dataset(dataset_name, split="test", label_column=columns)["label"])
    repeats = -(-num_samples // len(labels))
    order = torch.randperm(repeats * len(labels), generator=torch.Generator().manual_seed(seed))
    return labels.repeat(repeats)[order][:num_samples].tolist()


def main() -> None:
    args = parse_args()
    pipeline = load_pipeline(args.pipeline)
    saved_scheduler = getattr(pipeline, "scheduler", None)
    extractors = {path.name: load_feature_extractor(path) for path in feature_networks(args.dataset_name)}
    settings = {key: value for key, value in vars(args).items() if key != "settings"}
    header = {"benchmark": "sampling_sweep", "settings": settings}
    scored, command = portable_path(args.pipeline, ROOT), command_line(root=ROOT)
    columns = training_record(args.pipeline).get("hyperparameters", {}).get("label_columns") or ["label"]
    sizes = None
    if pipeline.layout.num_classes:
        sizes = class_sizes(args.dataset_name, columns)
    labels = None
    if args.class_mix == "reference":
        if not pipeline.layout.num_classes:
            raise SystemExit(f"--class_mix reference: {args.pipeline} is not class-conditional.")
        labels = reference_class_mix(args.dataset_name, columns, args.num_samples, args.seed)
    for setting in args.settings:
        call, overrides = split_scheduler_settings(saved_scheduler, setting)
        if saved_scheduler is not None:  # every setting starts from the saved scheduler
            pipeline.scheduler = type(saved_scheduler).from_config(saved_scheduler.config, **overrides)
        start = time.monotonic()
        images, _ = sample_images(
            pipeline, args.num_samples, args.batch_size, seed=args.seed, class_labels=labels, **call
        )
        seconds = time.monotonic() - start
        row = {
            "pipeline": args.label or scored,
            "scored": scored,
            "pipeline_class": type(pipeline).__name__,
            "num_samples": args.num_samples,
            "setting": setting,
            "resolved": pipeline.resolve_sampling(**{key: call.get(key) for key in pipeline.sampling_defaults}),
            "images_per_second": args.num_samples / seconds,
            "class_mix": args.class_mix,
        }
        if overrides:
            row["scheduler"] = overrides
        for name, extractor in extractors.items():
            metrics = score_images(images, extractor, args.dataset_name)
            keep = ("fid", "kid", "precision", "recall", "recognisability", "recognisable_share")
            row[name] = {key: metrics[key] for key in keep if key in metrics}
            agreement = head_agreement(extractor, images, sizes, labels) if sizes else None
            if agreement:
                row[name]["conditioning"] = agreement
        print(json.dumps(row), flush=True)
        append_row(args.output, row, header, scored, command)  # after each row: a long sweep loses nothing


if __name__ == "__main__":
    main()
