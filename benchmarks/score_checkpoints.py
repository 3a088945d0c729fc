#!/usr/bin/env python
"""Quality along one prior training run: each `checkpoint-<step>` of a run folder (Accelerate states written by
examples/train_prior.py, of any prior kind) as a pipeline with a finished pipeline's tokenizer, sampled and scored in every feature space
that ships for the dataset (FID, precision / recall, recognisability, conditioning) — the points of a
quality-vs-training-minutes curve.

    python benchmarks/score_checkpoints.py --run benchmarks/results/runs/emoji/ar-6x256 \
        --base_pipeline pretrained/emoji-ar --n_layer 6 --n_head 8 --n_embd 256 --minutes_per_step 0.0745 \
        --label "AR 6x256" --num_samples 1000

`--base_pipeline` gives the tokenizer and the number of classes (the run must have used the same); the prior's kind
and shape are the run's own (its `run_config.json`; `--n_layer/--n_head/--n_embd` for an AR run older than that file). A checkpoint's training minutes are its step times `--minutes_per_step` (the run's measured
rate, from its log) unless the run has finished (then its eval_results.json's rate). Rows are appended to `--output`
(default benchmarks/results/<dataset>/scaling_curve.json) after each checkpoint. A run that continued an earlier one
(`--init_from`, a new leg) is placed after it: its steps and minutes count from the earlier legs' totals.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from common import RESULTS, ROOT, append_row, class_sizes, training_record
from safetensors.torch import load_file

from hf_vqgen import load_pipeline
from hf_vqgen.data import label_column_sizes
from hf_vqgen.evaluation import head_agreement, sample_images, score_images
from hf_vqgen.evaluation.features import load_feature_extractor
from hf_vqgen.training.checkpointing import checkpoint_step, list_checkpoints
from hf_vqgen.training.prior_kinds import PRIOR_KINDS, PriorConfig
from hf_vqgen.training.run_config import RUN_CONFIG_FILE
from hf_vqgen.utils import command_line, portable_path


ASSETS = Path(__file__).resolve().parent / "assets"
KEEP = ("fid", "kid", "precision", "recall", "recognisability", "recognisable_share")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="A train_prior.py --output_dir with checkpoints.")
    parser.add_argument("--base_pipeline", required=True, help="A pipeline with the run's tokenizer and classes.")
    parser.add_argument("--n_layer", type=int, default=None, help="An AR run without run_config.json: its shape.")
    parser.add_argument("--n_head", type=int, default=None)
    parser.add_argument("--n_embd", type=int, default=None)
    parser.add_argument("--minutes_per_step", type=float, default=None)
    parser.add_argument("--started_at", default=None,
                        help="When the run started (ISO time, UTC): a checkpoint's minutes are then the time until its "
                             "folder was written (wall clock of this machine, waits included).")  # fmt: skip
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="Only these checkpoints (default: all).")
    parser.add_argument("--final", action="store_true", help="Also score the run's exported pipeline (its last step).")
    parser.add_argument(
        "--final_minutes",
        type=float,
        default=None,
        help="With --final, for a pipeline without eval_results.json: its training minutes.",
    )
    parser.add_argument("--final_steps", type=int, default=None, help="With --final_minutes: its training steps.")
    parser.add_argument("--label", required=True, help="The run's name in the curve.")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--guidance_scale", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.dataset_name = training_record(args.base_pipeline).get("dataset")
    args.output = args.output or RESULTS / args.dataset_name / "scaling_curve.json"
    finished = args.run / "eval_results.json"
    if finished.is_file() and args.started_at is None:
        results = json.loads(finished.read_text())
        args.minutes_per_step = results["train_minutes"] / results["train_steps"]
    if args.minutes_per_step is None and args.started_at is None and args.final_minutes is None:
        parser.error("the run has not finished: pass --minutes_per_step (from its log) or --started_at")
    return args


def earlier_legs(run: Path) -> tuple[int, float]:
    """(optimiser steps, training minutes) of the legs before `run`'s own: (0, 0) unless it continued a pipeline
    (`--init_from`, recorded in its run_config.json), whose eval_results.json holds their totals."""
    recorded = run / RUN_CONFIG_FILE
    init_from = json.loads(recorded.read_text()).get("init_from") if recorded.is_file() else None
    if not init_from:
        return 0, 0.0
    results = Path(init_from) if Path(init_from).is_absolute() else ROOT / init_from
    if not (results / "eval_results.json").is_file():
        raise SystemExit(f"{run} continued {init_from}, which has no eval_results.json: its earlier legs are unknown.")
    record = json.loads((results / "eval_results.json").read_text())
    legs = record.get("training_legs") or [record]
    return sum(leg["train_steps"] for leg in legs), record.get("total_train_minutes", record["train_minutes"])


def checkpoint_minutes(checkpoint: Path, step: int, args) -> float:
    if args.started_at is None:
        return step * args.minutes_per_step
    started = datetime.datetime.fromisoformat(args.started_at).replace(tzinfo=datetime.timezone.utc).timestamp()
    return ((checkpoint / "model.safetensors").stat().st_mtime - started) / 60


def run_kind(args):
    """The run's prior kind, built from what it recorded (`run_config.json`), else an AR prior of the given shape;
    and the recorded settings."""
    recorded = args.run / RUN_CONFIG_FILE
    if recorded.is_file():
        settings = json.loads(recorded.read_text())
        kind_name = settings["prior_type"]
    else:
        if None in (args.n_layer, args.n_head, args.n_embd):
            raise SystemExit(f"{args.run} has no {RUN_CONFIG_FILE}: pass --n_layer, --n_head and --n_embd (AR runs).")
        settings, kind_name = {"n_layer": args.n_layer, "n_head": args.n_head, "n_embd": args.n_embd}, "ar"
    fields = {name: value for name, value in settings.items() if name in PriorConfig.__dataclass_fields__}
    return PRIOR_KINDS[kind_name](PriorConfig(**fields | {"dropout": 0.0})), settings


def checkpoint_pipeline(base, kind, settings: dict, checkpoint: Path):
    """The checkpoint's model in its kind's pipeline, with the base pipeline's tokenizer (and class names: a run
    with `--class_tokens per_column` has one class token per label column, read back from them)."""
    per_column = settings.get("class_tokens") == "per_column"
    factors = label_column_sizes(list(base.id2label.values())) if per_column else ()
    layout = kind.layout(base.vqvae, base.layout.num_classes, factors)
    model = kind.build_model(layout)
    model.config.tokenizer_weights_sha256 = base.prior_model.config.tokenizer_weights_sha256
    missing, unexpected = model.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=False)
    tied = {key for key in missing if key.endswith(("lm_head.weight", "decoder.weight", "decoder.bias"))}
    if unexpected or set(missing) - tied:  # tied output layers are stored once, as the embedding
        raise ValueError(f"{checkpoint} does not fit the run's recorded prior shape: {missing=} {unexpected=}")
    model.tie_weights()
    return kind.pipeline(base.vqvae, model.eval())


def main() -> None:
    args = parse_args()
    base, (kind, settings) = load_pipeline(args.base_pipeline), run_kind(args)
    extractors = {
        path.name: load_feature_extractor(path) for path in sorted(ASSETS.glob(f"{args.dataset_name}_*classifier"))
    }
    columns = training_record(args.base_pipeline).get("hyperparameters", {}).get("label_columns") or ["label"]
    sizes = class_sizes(args.dataset_name, columns)
    header = {"benchmark": "scaling_curve", "settings": vars(args)}
    scored, command = portable_path(args.run, ROOT), command_line(root=ROOT)
    points = [(checkpoint_step(c), c) for c in list_checkpoints(args.run)]
    points = [(step, c) for step, c in points if not args.steps or step in args.steps]
    if args.final:
        points.append((None, args.run))
    steps_before, minutes_before = earlier_legs(args.run)
    for step, checkpoint in points:
        if step is None:  # the exported pipeline: its own record says how long it trained
            pipeline = load_pipeline(args.run)
            if args.final_minutes is not None:
                step, minutes = args.final_steps, args.final_minutes
            else:
                record = json.loads((args.run / "eval_results.json").read_text())
                step, minutes = record["train_steps"], record["train_minutes"]  # this leg's
            step, minutes = step + steps_before, minutes + minutes_before
        else:
            pipeline = checkpoint_pipeline(base, kind, settings, checkpoint)
            step, minutes = step + steps_before, checkpoint_minutes(checkpoint, step, args) + minutes_before
        start = time.monotonic()
        images, _ = sample_images(
            pipeline, args.num_samples, args.batch_size, seed=0, guidance_scale=args.guidance_scale
        )
        row = {
            "run": args.label,
            "step": step,
            "train_minutes": minutes,
            "num_samples": args.num_samples,
            "guidance_scale": args.guidance_scale,
            "sampling_seconds": time.monotonic() - start,
        }
        for name, extractor in extractors.items():
            metrics = score_images(images, extractor, args.dataset_name)
            row[name] = {key: metrics[key] for key in KEEP if key in metrics}
            row[name]["conditioning"] = head_agreement(extractor, images, sizes)
        print(json.dumps(row), flush=True)
        append_row(args.output, row, header, scored, command)


if __name__ == "__main__":
    main()
