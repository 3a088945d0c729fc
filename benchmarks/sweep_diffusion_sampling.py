#!/usr/bin/env python
"""Sampling settings of a trained discrete-diffusion pipeline vs FID: steps, temperature, MaskGIT's choice
temperature and guidance, each setting scored on the same number of samples as examples/evaluate.py scores them
(seed 0, classes cycled, classifier features vs the test split of the dataset the pipeline was trained on).

    python benchmarks/sweep_diffusion_sampling.py --pipeline benchmarks/results/runs/diffusion-1 \
        --num_samples 2000 --steps 8 16 --choice_temperatures 1 4.5 20

Every combination of the listed values is scored. Appends a row per setting (naming the pipeline and the command)
to benchmarks/results/diffusion_sampling_sweep.json (written after each row); prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from common import RESULTS, ROOT, machine, training_record, write_report

from hf_vqgen import DiscreteDiffusionPipeline, DiscreteDiffusionScheduler
from hf_vqgen.evaluation import sample_images, score_images
from hf_vqgen.evaluation.features import load_feature_extractor
from hf_vqgen.utils import command_line, portable_path


ASSETS = Path(__file__).resolve().parent / "assets"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="A saved discrete-diffusion pipeline (folder or repo id).")
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[16])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--choice_temperatures", type=float, nargs="+", default=[4.5])
    parser.add_argument("--guidance_scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--dataset_name", default=None, help="Default: the one the pipeline was trained on.")
    parser.add_argument(
        "--feature_extractor", default=None, help="Default: benchmarks/assets/<dataset_name>_classifier."
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "diffusion_sampling_sweep.json")
    args = parser.parse_args(argv)
    args.dataset_name = args.dataset_name or training_record(args.pipeline).get("dataset")
    if args.dataset_name is None:
        parser.error(f"{args.pipeline} has no model_card.json naming its dataset: pass --dataset_name")
    args.feature_extractor = args.feature_extractor or str(ASSETS / f"{args.dataset_name}_classifier")
    return args


def main() -> None:
    args = parse_args()
    pipeline = DiscreteDiffusionPipeline.from_pretrained(args.pipeline)
    base_config = dict(pipeline.scheduler.config)
    extractor = load_feature_extractor(args.feature_extractor)
    report = json.loads(args.output.read_text()) if args.output.is_file() else {"benchmark": "diffusion_sampling"}
    report["machine"] = machine()
    # the file gathers several invocations: `scored` lists every pipeline in it, each row its own and its command
    report["settings"] = vars(args)
    rows = report.setdefault("rows", [])
    scored = portable_path(args.pipeline, ROOT)  # repo-relative, or a repo id as given
    report["scored"] = list(dict.fromkeys([*report.get("scored", []), scored]))
    command = command_line(root=ROOT)
    grid = itertools.product(args.steps, args.temperatures, args.choice_temperatures, args.guidance_scales)
    for steps, temperature, choice_temperature, guidance_scale in grid:
        pipeline.scheduler = DiscreteDiffusionScheduler.from_config(base_config, choice_temperature=choice_temperature)
        start = time.monotonic()
        sampling = {"num_inference_steps": steps, "temperature": temperature, "guidance_scale": guidance_scale}
        images, _ = sample_images(pipeline, args.num_samples, args.batch_size, seed=args.seed, **sampling)
        seconds = time.monotonic() - start
        metrics = score_images(images, extractor, args.dataset_name)
        row = {
            "pipeline": scored,
            "num_samples": args.num_samples,
            "steps": steps,
            "temperature": temperature,
            "choice_temperature": choice_temperature,
            "guidance_scale": guidance_scale,
            **{key: metrics[key] for key in ("fid", "kid", "precision", "recall")},
            "images_per_second": args.num_samples / seconds,
            "command": command,
        }
        rows.append(row)
        setting = f"steps {steps:3d}  T {temperature:4.2f}  choice T {choice_temperature:5.2f}"
        figures = f"FID {row['fid']:6.3f}  P {row['precision']:.3f}  R {row['recall']:.3f}"
        print(
            f"{setting}  guidance {guidance_scale:4.2f}  {figures}  {row['images_per_second']:.1f} img/s", flush=True
        )
        write_report(args.output, report, command=command, echo=False)  # after each row: a long sweep loses nothing


if __name__ == "__main__":
    main()
