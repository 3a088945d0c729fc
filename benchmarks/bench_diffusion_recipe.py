#!/usr/bin/env python
"""Benchmark: discrete-diffusion priors vs the autoregressive prior on the same tokens and the same training budget.

    python benchmarks/bench_diffusion_recipe.py   # after bench_tokenizer_recipe.py and bench_ar_recipe.py

Trains, with `--recipe` (default examples/recipes/diffusion_fashion_mnist.args) and the AR prior's number of steps
(same size, batch and optimiser), (1) the original recipe (uniform corruption, g(x_b) -> x_a, resample-every-position
sampler) and (2) absorbing corruption + x0 prediction with MaskGIT confidence decoding; scores `--num_samples` samples
of each with examples/evaluate.py at each of `--steps`, times sampling at batch 100 (throughput) and batch 1 (latency)
beside the AR pipeline, and writes benchmarks/results/diffusion_recipe.json and fid_vs_sampling_time.png. The AR row
comes from bench_ar_recipe.py's results (its pipeline, its steps: one per token of the grid).

    python benchmarks/bench_diffusion_recipe.py --retime   # re-time the saved pipelines; keeps every FID

Run it alone, under OpenMP's default wait policy (see bench_ar_sampling.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import (
    RECIPES,
    RESULTS,
    ROOT,
    RUNS,
    dataset_arguments,
    local,
    machine,
    read_json,
    relative,
    run_script,
    time_calls,
    training_record,
    write_report,
)

from hf_vqgen import DiscreteDiffusionPipeline, load_pipeline
from hf_vqgen.utils import command_line


EVALUATION_SETTINGS = ("dataset_name", "split", "feature_extractor", "seed", "temperature", "batch_size")
VARIANTS = {
    "original (uniform, x_b -> x_a, resample)": ["--corruption", "uniform", "--objective", "original"],
    "absorbing + confidence (MaskGIT)": [],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPES / "diffusion_fashion_mnist.args")
    parser.add_argument("--num_samples", type=int, default=10000)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16], help="Sampling steps scored.")
    parser.add_argument("--runs_dir", type=Path, default=RUNS)
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--reuse_runs",
        action="store_true",
        help="Keep a variant's finished pipeline in --runs_dir (and a finished evaluation with the same settings) "
        "instead of training (scoring) it again.",
    )
    parser.add_argument(
        "--retime",
        action="store_true",
        help="Only re-measure sampling speed of the pipelines in the saved table.",
    )
    return parser.parse_args(argv)


def sampling_speed(pipeline, batch_size: int, repeats: int, **kwargs) -> float:
    """Images per second of the pipeline at `batch_size` (median of `repeats` timed calls after a warm-up)."""
    pipeline.set_progress_bar_config(disable=True)
    num_classes = pipeline.layout.num_classes
    labels = (torch.arange(batch_size) % num_classes).tolist() if num_classes else None
    generator = torch.Generator().manual_seed(0)
    timing = time_calls(
        lambda: pipeline(batch_size, class_labels=labels, generator=generator, output_type="token_ids", **kwargs),
        repeats,
    )
    return batch_size / timing.median


def time_row(row: dict) -> None:
    """Throughput (batch 100) and latency (batch 1) of the row's pipeline (`row["scored"]`), in place."""
    if "scored" not in row:
        raise SystemExit(f"The row {row['prior']!r} does not name the pipeline it scored: rerun without --retime.")
    pipeline = load_pipeline(local(row["scored"]))
    kwargs = {"num_inference_steps": row["steps"]} if pipeline.has_reverse_process else {}
    row["images_per_second_batch100"] = sampling_speed(pipeline, 100, 3, **kwargs)
    row["images_per_second_batch1"] = sampling_speed(pipeline, 1, 5, **kwargs)


def ar_row(ar_report: dict) -> dict:
    """The AR prior's row, from bench_ar_recipe.py's results: its steps are the tokens of its grid."""
    pipeline = ar_report["scored"]["pipeline"]
    return {
        "prior": "autoregressive (GPT-2, KV cache)",
        "scored": pipeline,
        "steps": load_pipeline(local(pipeline)).layout.num_tokens,
        "guidance_scale": ar_report["sampling"]["settings"]["guidance_scale"],
        "train_minutes": ar_report["train_minutes"],
        **{key: ar_report["samples"][key] for key in ("fid", "kid", "precision", "recall")},
    }


def train_variant(args, index: int, overrides: list[str], tokenizer: Path, tokens: Path, train_steps: int) -> Path:
    pipeline_dir = args.runs_dir / f"diffusion-{index}"
    if args.reuse_runs and (pipeline_dir / "model_index.json").is_file():
        trained = read_json(pipeline_dir / "eval_results.json", "examples/train_prior.py")
        if trained["train_steps"] != train_steps:
            raise SystemExit(f"{pipeline_dir} trained {trained['train_steps']} steps, not {train_steps}: retrain it.")
        return pipeline_dir
    run_script("train_prior", f"@{relative(args.recipe)}", *overrides, "--vqvae_name_or_path", tokenizer,
               "--tokens_dir", tokens, "--output_dir", pipeline_dir, "--max_train_steps", train_steps,
               "--report_to", "none")  # fmt: skip
    return pipeline_dir


def score(pipeline_dir: Path, output_dir: Path, num_samples: int, *extra, reuse: bool = False) -> dict:
    done = output_dir / "results.json"
    if reuse and done.is_file():
        evaluated = read_json(done, "examples/evaluate.py")
        steps = int(extra[extra.index("--num_inference_steps") + 1])
        settings = evaluated["settings"]
        if (settings["pipeline"], settings["num_samples"], settings["num_inference_steps"]) == (
            relative(pipeline_dir),
            num_samples,
            steps,
        ) and settings["guidance_scale"] == 1.0:
            return evaluated
    run_script(
        "evaluate", "--pipeline", pipeline_dir, "--num_samples", num_samples, "--output_dir", output_dir, *extra
    )
    return read_json(output_dir / "results.json", "examples/evaluate.py")


def main() -> None:
    args = parse_args()
    if args.retime:
        retime(args.results_dir)
        return
    runs = args.runs_dir
    tokenizer, tokens = runs / "recipe", runs / "tokens"
    ar_report = read_json(args.results_dir / "prior_recipe.json", "benchmarks/bench_ar_recipe.py")
    train_steps = ar_report["prior"]["train_steps"]
    scoring = dataset_arguments(tokenizer, scoring=True)
    rows = [ar_row(ar_report)]
    time_row(rows[0])
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        pipeline_dir = train_variant(args, index, overrides, tokenizer, tokens, train_steps)
        trained = read_json(pipeline_dir / "eval_results.json", "examples/train_prior.py")
        scheduler = DiscreteDiffusionPipeline.from_pretrained(pipeline_dir).scheduler.config
        hyperparameters = training_record(pipeline_dir).get("hyperparameters", {})
        for steps in args.steps:
            output_dir = runs / f"eval-diffusion-{index}-{steps}"
            evaluated = score(
                pipeline_dir, output_dir, args.num_samples, "--num_inference_steps", steps, *scoring,
                reuse=args.reuse_runs,
            )  # fmt: skip
            rows.append(
                {
                    "prior": name,
                    "scored": pipeline_dir,
                    "corruption": scheduler.corruption,
                    "sampler": scheduler.sampler,
                    "objective": hyperparameters.get("objective"),
                    "steps": steps,
                    "guidance_scale": evaluated["settings"]["guidance_scale"],
                    "train_minutes": trained["train_minutes"],
                    "eval_denoising_bits_per_token": trained["eval_bits_per_token"],
                    "train_peak_rss_mib": trained.get("peak_rss_mib"),  # recorded by train_prior.py since 2026-11-29
                    **{key: evaluated["metrics"][key] for key in ("fid", "kid", "precision", "recall")},
                    "mean_steps_run": evaluated["settings"].get("mean_steps_run"),
                    "evaluation": relative(output_dir / "results.json"),
                }
            )
            time_row(rows[-1])
    # how examples/evaluate.py scored every row (the AR row: bench_ar_recipe.py, by the same script)
    evaluation = {key: evaluated["settings"][key] for key in EVALUATION_SETTINGS}
    settings = vars(args) | {"evaluation": evaluation}
    report = {
        "benchmark": "diffusion_recipe",
        "machine": machine(),
        "scored": list(dict.fromkeys(row["scored"] for row in rows)),
        "settings": settings,
        "num_samples": args.num_samples,
        "train_steps": train_steps,
        "rows": rows,
    }
    save(report, args.results_dir)


def retime(results: Path) -> None:
    report = read_json(results / "diffusion_recipe.json", "benchmarks/bench_diffusion_recipe.py")
    for row in report["rows"]:
        time_row(row)
        print(
            row["prior"],
            row["steps"],
            f"{row['images_per_second_batch100']:.1f}",
            f"{row['images_per_second_batch1']:.1f}",
        )
    report["machine"] = machine()
    report["retime_command"] = command_line(root=ROOT)
    save(report, results, command=report.get("command"))


def save(report: dict, results: Path, command: str | None = None) -> None:
    """Ratios to the AR row, the JSON and the plot."""
    rows = report["rows"]
    ar = rows[0]
    for row in rows[1:]:
        row["fid_over_ar"] = row["fid"] / ar["fid"]
        row["speedup_over_ar_batch100"] = row["images_per_second_batch100"] / ar["images_per_second_batch100"]
        row["speedup_over_ar_batch1"] = row["images_per_second_batch1"] / ar["images_per_second_batch1"]
    write_report(results / "diffusion_recipe.json", report, command=command)
    plot(report, results / "fid_vs_sampling_time.png")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, key, title in (
        (axes[0], "images_per_second_batch100", "throughput (batch 100)"),
        (axes[1], "images_per_second_batch1", "latency (batch 1)"),
    ):
        for row in report["rows"]:
            milliseconds = 1000 / row[key]
            axis.scatter(milliseconds, row["fid"])
            axis.annotate(f"{row['prior'].split(' (')[0]}, {row['steps']} steps", (milliseconds, row["fid"]),
                          fontsize=7, xytext=(4, 4), textcoords="offset points")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel(f"ms per image ({report['machine']['torch_threads']} CPU threads)")
        axis.set_title(title)
    extractor = Path(report["settings"]["evaluation"]["feature_extractor"]).name
    axes[0].set_ylabel(f"FID, {report['num_samples']} samples ({extractor} features)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
