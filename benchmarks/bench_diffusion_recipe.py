#!/usr/bin/env python
"""Benchmark: discrete-diffusion priors vs the autoregressive prior on the same tokens and the same training budget.

    python benchmarks/bench_diffusion_recipe.py   # after bench_tokenizer_recipe.py and bench_ar_recipe.py

Trains, with examples/recipes/diffusion_fashion_mnist.args and the AR prior's number of steps (same size, batch and
optimiser), (1) the original recipe (uniform corruption, g(x_b) -> x_a, resample-every-position sampler) and
(2) absorbing corruption + x0 prediction with MaskGIT confidence decoding; scores 10,000 samples of each with
examples/evaluate.py at 8 and 16 steps, times sampling at batch 100 (throughput) and batch 1 (latency) beside the AR
pipeline, and writes benchmarks/results/diffusion_recipe.json and fid_vs_sampling_time.png.

    python benchmarks/bench_diffusion_recipe.py --retime   # re-time the saved pipelines; keeps every FID

Run it alone, under OpenMP's default wait policy (see bench_ar_sampling.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import evaluate  # noqa: E402
import train_prior  # noqa: E402
from bench_tokenizer_recipe import machine  # noqa: E402

from hf_vqgen import load_pipeline  # noqa: E402


RUNS = ROOT / "benchmarks" / "results" / "runs"
RESULTS = ROOT / "benchmarks" / "results"
RECIPE = ROOT / "examples" / "recipes" / "diffusion_fashion_mnist.args"
VARIANTS = {
    "original (uniform, x_b -> x_a, resample)": ["--corruption", "uniform", "--objective", "original"],
    "absorbing + confidence (MaskGIT)": [],
}


def sampling_speed(pipeline_dir: Path, batch_size: int, repeats: int, **kwargs) -> float:
    """Images per second of the pipeline at `batch_size` (median of `repeats` timed calls after a warm-up)."""
    pipeline = load_pipeline(pipeline_dir)
    pipeline.set_progress_bar_config(disable=True)
    labels = (torch.arange(batch_size) % pipeline.layout.num_classes).tolist()
    generator = torch.Generator().manual_seed(0)
    pipeline(batch_size, class_labels=labels, generator=generator, output_type="token_ids", **kwargs)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipeline(batch_size, class_labels=labels, generator=generator, output_type="token_ids", **kwargs)
        seconds.append(time.perf_counter() - start)
    return batch_size / sorted(seconds)[len(seconds) // 2]


def score(pipeline_dir: Path, output_dir: Path, num_samples: int, extra: list[str]) -> dict:
    out = evaluate.main(
        evaluate.parse_args(
            ["--pipeline", str(pipeline_dir), "--num_samples", str(num_samples), "--output_dir", str(output_dir)]
            + extra
        )
    )
    return {"metrics": out["metrics"], "timings": out["timings"], "settings": out["settings"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_samples", type=int, default=10000)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16], help="Sampling steps scored.")
    parser.add_argument("--runs_dir", type=Path, default=RUNS)
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--retime",
        action="store_true",
        help="Only re-measure sampling speed of the pipelines in --runs_dir for the saved table.",
    )
    args = parser.parse_args()
    runs, results = args.runs_dir, args.results_dir
    if args.retime:
        retime(runs, results)
        return
    tokenizer, tokens = runs / "recipe", runs / "tokens"
    ar_report_path = results / "prior_recipe.json"
    if not ar_report_path.is_file():
        raise SystemExit("Run benchmarks/bench_ar_recipe.py first (it trains the AR prior and writes the tokens).")
    ar_report = json.loads(ar_report_path.read_text())
    train_steps = ar_report["prior"]["train_steps"]

    rows = [
        {
            "prior": "autoregressive (GPT-2, KV cache)",
            "steps": 49,
            "train_minutes": ar_report["train_minutes"],
            "fid": ar_report["samples"]["fid"],
            "kid": ar_report["samples"]["kid"],
            "precision": ar_report["samples"]["precision"],
            "recall": ar_report["samples"]["recall"],
        }
    ]
    time_row(runs, rows[0], None)
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        pipeline_dir = runs / f"diffusion-{index}"
        trained = train_prior.main(
            train_prior.parse_args(
                [
                    f"@{RECIPE}",
                    *overrides,
                    "--vqvae_name_or_path",
                    str(tokenizer),
                    "--tokens_dir",
                    str(tokens),
                    "--output_dir",
                    str(pipeline_dir),
                    "--max_train_steps",
                    str(train_steps),
                    "--report_to",
                    "none",
                ]
            )  # fmt: skip
        )
        for steps in args.steps:
            scored = score(pipeline_dir, runs / f"eval-diffusion-{index}-{steps}", args.num_samples,
                           ["--num_inference_steps", str(steps)])  # fmt: skip
            rows.append(
                {
                    "prior": name,
                    "steps": steps,
                    "train_minutes": trained["train_minutes"],
                    "eval_denoising_bits_per_token": trained["eval_bits_per_token"],
                    "fid": scored["metrics"]["fid"],
                    "kid": scored["metrics"]["kid"],
                    "precision": scored["metrics"]["precision"],
                    "recall": scored["metrics"]["recall"],
                    "mean_steps_run": scored["settings"].get("mean_steps_run"),
                }
            )
            time_row(runs, rows[-1], index)
            print(json.dumps(rows[-1], indent=2))
    report = {"benchmark": "diffusion_recipe", "machine": machine(), "num_samples": args.num_samples,
              "train_steps": train_steps, "rows": rows}  # fmt: skip
    write_report(report, results)


def time_row(runs: Path, row: dict, index: int | None) -> None:
    """Throughput (batch 100) and latency (batch 1) of the row's pipeline, in place."""
    if index is None:
        pipeline_dir, kwargs = runs / "ar", {}
    else:
        pipeline_dir, kwargs = runs / f"diffusion-{index}", {"num_inference_steps": row["steps"]}
    row["images_per_second_batch100"] = sampling_speed(pipeline_dir, 100, 3, **kwargs)
    row["images_per_second_batch1"] = sampling_speed(pipeline_dir, 1, 5, **kwargs)


def retime(runs: Path, results: Path) -> None:
    report = json.loads((results / "diffusion_recipe.json").read_text())
    names = list(VARIANTS)
    for row in report["rows"]:
        time_row(runs, row, names.index(row["prior"]) if row["prior"] in names else None)
        print(
            row["prior"],
            row["steps"],
            f"{row['images_per_second_batch100']:.1f}",
            f"{row['images_per_second_batch1']:.1f}",
        )
    report["machine"] = machine()
    write_report(report, results)


def write_report(report: dict, results: Path) -> None:
    rows = report["rows"]
    ar = rows[0]
    for row in rows[1:]:
        row["fid_over_ar"] = row["fid"] / ar["fid"]
        row["speedup_over_ar_batch100"] = row["images_per_second_batch100"] / ar["images_per_second_batch100"]
        row["speedup_over_ar_batch1"] = row["images_per_second_batch1"] / ar["images_per_second_batch1"]
    (results / "diffusion_recipe.json").write_text(json.dumps(report, indent=2))
    plot(rows, results / "fid_vs_sampling_time.png")
    print(json.dumps(report, indent=2))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, key, title in (
        (axes[0], "images_per_second_batch100", "throughput (batch 100)"),
        (axes[1], "images_per_second_batch1", "latency (batch 1)"),
    ):
        for row in rows:
            milliseconds = 1000 / row[key]
            axis.scatter(milliseconds, row["fid"])
            axis.annotate(f"{row['prior'].split(' (')[0]}, {row['steps']} steps", (milliseconds, row["fid"]),
                          fontsize=7, xytext=(4, 4), textcoords="offset points")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("ms per image (2 CPU cores)")
        axis.set_title(title)
    axes[0].set_ylabel("FID, 10k samples (classifier features)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
