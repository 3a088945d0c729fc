#!/usr/bin/env python
"""Sampling settings of a trained discrete-diffusion pipeline vs FID: steps, temperature, MaskGIT's choice
temperature and guidance, each setting scored on the same number of samples as examples/evaluate.py scores them
(seed 0, classes cycled, classifier features vs the test split).

    python benchmarks/sweep_diffusion_sampling.py --pipeline benchmarks/results/runs/diffusion-1 \
        --num_samples 2000 --steps 8 16 --choice_temperatures 1 4.5 20

Every combination of the listed values is scored. Appends a row per setting to
benchmarks/results/diffusion_sampling_sweep.json (written after each row); prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))
from bench_tokenizer_recipe import machine  # noqa: E402
from evaluate import DEFAULT_EXTRACTOR, generate  # noqa: E402

from hf_vqgen import DiscreteDiffusionPipeline, DiscreteDiffusionScheduler  # noqa: E402
from hf_vqgen.evaluation import score_images  # noqa: E402
from hf_vqgen.feature_extractors import load_feature_extractor  # noqa: E402


RESULTS = ROOT / "benchmarks" / "results" / "diffusion_sampling_sweep.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--num_samples", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--steps", type=int, nargs="+", default=[16])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--choice_temperatures", type=float, nargs="+", default=[4.5])
    parser.add_argument("--guidance_scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--dataset_name", default="fashion_mnist")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    pipeline = DiscreteDiffusionPipeline.from_pretrained(args.pipeline)
    base_config = dict(pipeline.scheduler.config)
    extractor = load_feature_extractor(str(DEFAULT_EXTRACTOR))
    report = json.loads(args.output.read_text()) if args.output.is_file() else {"benchmark": "diffusion_sampling"}
    report["machine"] = machine()
    rows = report.setdefault("rows", [])
    grid = itertools.product(args.steps, args.temperatures, args.choice_temperatures, args.guidance_scales)
    for steps, temperature, choice_temperature, guidance_scale in grid:
        pipeline.scheduler = DiscreteDiffusionScheduler.from_config(base_config, choice_temperature=choice_temperature)
        start = time.monotonic()
        images, _ = generate(pipeline, args.num_samples, args.batch_size, seed=0, num_inference_steps=steps,
                             temperature=temperature, guidance_scale=guidance_scale)  # fmt: skip
        seconds = time.monotonic() - start
        metrics = score_images(images, extractor, args.dataset_name)
        row = {
            "pipeline": str(args.pipeline),
            "num_samples": args.num_samples,
            "steps": steps,
            "temperature": temperature,
            "choice_temperature": choice_temperature,
            "guidance_scale": guidance_scale,
            **{key: metrics[key] for key in ("fid", "kid", "precision", "recall")},
            "images_per_second": args.num_samples / seconds,
        }
        rows.append(row)
        print(
            f"steps {steps:3d}  T {temperature:4.2f}  choice T {choice_temperature:5.2f}  guidance {guidance_scale:4.2f}"
            f"  FID {row['fid']:6.3f}  P {row['precision']:.3f}  R {row['recall']:.3f}  {row['images_per_second']:.1f} img/s",
            flush=True,
        )
        args.output.write_text(json.dumps(report, indent=2))  # after each row: a long sweep loses nothing


if __name__ == "__main__":
    main()
