#!/usr/bin/env python
"""Copy the benchmark runs of the README's recipes into `pretrained/` as the shipped pipelines: weights in
safetensors, a model card with the run's own training command and hyperparameters (as its training script recorded
them, the tokenizer named by the run folder it actually used) and the metrics the benchmarks measured on these very
weights, sample grids, completions, and the reverse-diffusion GIF.

    python -m tools.ship_pretrained   # from the repository root, after bench_ar_recipe.py and bench_diffusion_recipe.py
    python -m tools.ship_pretrained --diffusion_run diffusion-1-4k
    python -m tools.ship_pretrained --kinds ar --runs_dir benchmarks/results/runs/emoji --ar_run ar-6x256 \
        --name_prefix emoji --results_dir benchmarks/results/emoji --samples_per_class 2 --classes_per_row 3 \
        --ar_sampling_defaults temperature=0.85 top_k=100 guidance_scale=3 guidance_schedule=linear \
        --images_dir pretrained/emoji-ar/test_images    # this reproduces pretrained/emoji-ar's samples and completions

A release tool, not a benchmark: it measures nothing itself (it copies what the benchmarks measured). It reads the
benchmarks' run folders and results through `benchmarks/common.py`, hence `-m` from the repository root.

`--ar_sampling_defaults` / `--diffusion_sampling_defaults` are saved in the shipped pipeline (as
examples/set_sampling_defaults.py does) and its samples drawn with them; a name its scheduler's config has (diffusion's
`choice_temperature`) is saved in the shipped scheduler instead, as sweep_sampling.py applies it. Rows of
`sampling_sweep.json` (benchmarks/sweep_sampling.py) that scored the run at exactly those settings become card
metrics. The card keeps the earlier card's limitations line unless `--limitations` replaces it.

Card metrics are merged: on a rerun the figures this script copies are replaced, and figures added since (e.g. by
`examples/evaluate.py --update_card`) are kept as long as the shipped weights are unchanged. Samples are drawn with
the settings `make demo` uses (Makefile `demo-shipped`: AR guidance 1.5; diffusion 8 steps, guidance 2).

With `--dtype float16` the weights are stored in half precision (half the size; pipelines still load in float32),
and no metrics are copied, since they were measured on the float32 weights: measure the shipped ones with
`examples/evaluate.py --update_card`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import torch

from benchmarks.common import RESULTS, ROOT, RUNS, portable, read_json, relative, run_script, training_record
from hf_vqgen import DiscreteDiffusionPipeline, DiscreteDiffusionScheduler, VQGenPipeline, VQVAEModel, load_pipeline
from hf_vqgen.data.registry import DATASETS
from hf_vqgen.model_cards import model_facts, training_context, write_model_card
from hf_vqgen.pipelines.token_pipeline import (
    SAMPLING_DEFAULTS_KEY,
    apply_scheduler_settings,
    split_scheduler_settings,
)
from hf_vqgen.utils import parse_settings


DTYPES = {"float16": torch.float16, "float32": torch.float32}
SCRIPTS = {"tokenizer": "train_vqvae.py", "ar": "train_prior.py", "diffusion": "train_prior.py"}
KINDS = tuple(SCRIPTS)
# whose library defaults a card's sweep figures resolve against
PIPELINE_CLASSES = {"ar": VQGenPipeline, "diffusion": DiscreteDiffusionPipeline}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "pretrained")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--runs_dir", type=Path, default=RUNS)
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    parser.add_argument("--tokenizer_run", default="recipe", help="Folder in --runs_dir of the shipped tokenizer.")
    parser.add_argument("--ar_run", default="ar", help="Folder in --runs_dir of the shipped AR pipeline.")
    parser.add_argument("--diffusion_run", default="diffusion-1", help="Folder in --runs_dir of the shipped denoiser.")
    parser.add_argument(
        "--name_prefix",
        default=None,
        help="Shipped folders <prefix>-tokenizer, ...; default: the tokenizer's dataset.",
    )
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="Ship only these.")
    parser.add_argument("--limitations", default=None, help="The cards' limitations line (default: kept).")
    sampling = parser.add_argument_group("the shipped samples (Makefile demo-shipped)")
    sampling.add_argument("--samples_per_class", type=int, default=8)
    sampling.add_argument("--classes_per_row", type=int, default=1)
    sampling.add_argument("--images_dir", type=Path, default=None,
                          help="Test images to complete (e.g. pretrained/emoji-ar/test_images); default: the test split.")  # fmt: skip
    for kind in ("ar", "diffusion"):
        sampling.add_argument(f"--{kind}_sampling_defaults", nargs="+", default=[], metavar="NAME=VALUE",
                              help="Saved in the shipped pipeline; its samples use them (not the flags below).")  # fmt: skip
    sampling.add_argument("--ar_guidance_scale", type=float, default=1.5)
    sampling.add_argument("--diffusion_steps", type=int, default=8)
    sampling.add_argument("--diffusion_guidance_scale", type=float, default=2.0)
    sampling.add_argument(
        "--strip_temperatures", type=float, nargs="*", default=[], help="Reverse-process strips at these temperatures."
    )
    args = parser.parse_args(argv)
    for flag in ("ar_sampling_defaults", "diffusion_sampling_defaults"):
        try:
            setattr(args, flag, parse_settings(getattr(args, flag), f"--{flag}"))
        except ValueError as error:
            parser.error(str(error))
    return args


# the metrics, from the benchmark results that scored these runs


def card_metrics(metrics: dict) -> dict:
    """The figures a card lists: numbers, without spreads and counts."""
    return {
        key: value
        for key, value in metrics.items()
        if isinstance(value, int | float) and not key.endswith("_std") and not key.startswith("num_")
    }


def evaluator(how: str, what: str, settings: dict, sampling: str = "") -> str:
    """How a benchmark's figures were measured, as the card's label for them (one card may list several)."""
    n, classes = settings["num_samples"], ", classes cycled evenly" if settings.get("classes") else ""
    detail = f" (seed {settings['seed']}{classes}{sampling})" if what == "samples" else ""
    return (
        f"examples/evaluate.py ({how}): {n:,} {what}{detail} vs the {settings['dataset_name']} {settings['split']} "
        f"split, features of {settings['feature_extractor']}"
    )


def sampling_label(settings: dict, steps: int | None = None) -> str:
    label = f", {steps} steps" if steps is not None else ""
    return label + f", guidance {settings['guidance_scale']:g}, temperature {settings['temperature']:g}"


def benchmark_metrics(args) -> dict:
    """{kind: {evaluator: metrics}} from the benchmark results whose `scored` names the shipped runs."""
    runs = {kind: relative(args.runs_dir / getattr(args, f"{kind}_run")) for kind in ("tokenizer", "ar", "diffusion")}
    metrics = {"tokenizer": {}, "ar": {}, "diffusion": {}}
    ar = read_json(args.results_dir / "prior_recipe.json", "benchmarks/bench_ar_recipe.py")
    how = "benchmarks/bench_ar_recipe.py"
    if ar["scored"]["tokenizer"] == runs["tokenizer"]:
        evaluation = ar["tokenizer_evaluation"]
        settings = evaluation["settings"] | {
            "num_samples": evaluation.get("num_images", evaluation["settings"]["num_samples"])
        }
        metrics["tokenizer"][evaluator(f"--tokenizer, {how}", "reconstructions", settings)] = {
            "rfid": ar["tokenizer_rfid"]
        }
    if ar["scored"]["pipeline"] == runs["ar"]:
        for scored, samples in ((ar["sampling"], ar["samples"]), (ar["guided"]["sampling"], ar["guided"]["samples"])):
            label = evaluator(how, "samples", scored["settings"], sampling_label(scored["settings"]))
            metrics["ar"][label] = card_metrics(samples)
    diffusion_results = args.results_dir / "diffusion_recipe.json"
    diffusion = read_json(diffusion_results) if diffusion_results.is_file() else {"rows": []}
    settings = diffusion.get("settings", {}).get("evaluation", {}) | {"num_samples": diffusion.get("num_samples")}
    settings["classes"] = True
    for row in diffusion["rows"]:
        if row["scored"] == runs["diffusion"]:
            label = sampling_label(settings | {"guidance_scale": row["guidance_scale"]}, row["steps"])
            label = evaluator("benchmarks/bench_diffusion_recipe.py", "samples", settings, label)
            metrics["diffusion"][label] = {key: row[key] for key in ("fid", "kid", "precision", "recall")}
    # examples/evaluate.py results saved beside them (`eval_*.json`) that scored a shipped run
    for path in sorted(args.results_dir.glob("eval_*.json")):
        result = read_json(path)
        for kind, run in runs.items():
            if result.get("scored") == run and "fid" in result.get("metrics", {}):
                settings = result["settings"] | {"num_samples": result["metrics"]["num_samples"]}
                steps = settings.get("num_inference_steps")  # None for an AR prior
                label = evaluator(relative(path), "samples", settings, sampling_label(settings, steps))
                metrics[kind][label] = card_metrics(result["metrics"])
    for kind in ("ar", "diffusion"):
        call, scheduler = getattr(args, f"{kind}_sampling_defaults"), getattr(args, f"{kind}_scheduler_settings", {})
        metrics[kind] |= sweep_metrics(args, runs[kind], kind, call, scheduler)
    for kind, found in metrics.items():
        if not found:
            print(f"No benchmark result scored {runs[kind]}: its card lists the training script's figures only.")
    return metrics


def sweep_metrics(args, run: str, kind: str, defaults: dict, scheduler: dict | None = None) -> dict:
    """{evaluator: metrics} of the sampling_sweep.json rows that scored `run` at exactly its shipped sampling (the
    library's defaults for `kind` updated by `defaults`, compared resolved, with the run's scheduler updated by
    `scheduler`, and classes cycled evenly): each feature space's figures (prefixed by the space: `shape_fid`,
    `global_fid`, ...) and the conditioning agreement of the dataset's plain classifier (`category_accuracy`, `category_style_accuracy`)."""
    path = args.results_dir / "sampling_sweep.json"
    rows = read_json(path)["rows"] if path.is_file() else []
    record = training_record(ROOT / run) if rows else {}  # read once, not per row
    dataset, found = record.get("dataset"), {}
    shipped = PIPELINE_CLASSES[kind].builtin_sampling_defaults | defaults
    for row in rows:
        as_shipped = row.get("resolved") == shipped and row.get("scheduler", {}) == (scheduler or {})
        if row.get("scored") != run or row.get("class_mix", "even") != "even" or not as_shipped:
            continue
        spaces = {name: name.removeprefix(f"{dataset}_").removesuffix("classifier").strip("_") or "global"
                  for name in row if name.endswith("classifier")}  # fmt: skip
        figures = {f"{spaces[name]}_{key}": value for name in spaces for key, value in card_metrics(row[name]).items()}
        meaning = DATASETS[dataset].label_meaning if dataset in DATASETS else "class"
        agreement = row.get(f"{dataset}_classifier", {}).get("conditioning", {})
        columns = record.get("hyperparameters", {}).get("label_columns") or ["label"]
        if "accuracy_label" in agreement:
            figures[f"{meaning}_accuracy"] = agreement["accuracy_label"]
        if "accuracy" in agreement:
            figures["_".join([meaning, *columns[1:], "accuracy"])] = agreement["accuracy"]
        spaces_named = " and ".join(f"{name} ({space}_)" for name, space in spaces.items())
        label = (f"benchmarks/sweep_sampling.py ({relative(path)}): {row['num_samples']:,} samples with the saved "
                 f"defaults (seed 0, classes cycled evenly) vs the {dataset} test split, features of {spaces_named}")  # fmt: skip
        found[label] = figures
    return found


# shipping


def weights_digest(folder: Path) -> str | None:
    """One hash of every safetensors file in `folder` (None when there are none)."""
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def owned(label: str) -> bool:
    """Whether this script wrote the card metrics under `label`: a training script's, or a benchmark's labelled
    `examples/evaluate.py (<how>): ...` (`examples/evaluate.py --update_card` writes `examples/evaluate.py: ...`)."""
    return label.startswith(("examples/train_", "examples/evaluate.py ("))


def card_context(record: dict, facts: dict, kept: dict, metrics: dict) -> dict:
    """The shipped card: the source run's training command and hyperparameters as its training script recorded them
    (`record`, paths made portable), its training legs and kind's template, `kept` metrics of the earlier card, the
    run's and the benchmarks' `metrics`."""
    run_args = argparse.Namespace(**portable(record["hyperparameters"]))
    context = training_context(record["kind"], SCRIPTS[record["kind"]], run_args, facts, {}, "none")
    context |= {key: record[key] for key in ("training", "template", "kind_name", "tags") if key in record}
    context["metrics"] = kept | metrics
    return context


def ship(
    source: Path,
    target: Path,
    dtype: torch.dtype,
    metrics: dict,
    save,
    sample_args: list | None,
    args,
    scheduler_settings: dict | None = None,
) -> None:
    """Save the run `source` into `target` with `save(target)`, draw its samples, and write its card (the earlier
    card's limitations line kept unless `args.limitations`; `scheduler_settings`: the saved scheduler's overrides)."""
    record = training_record(source)
    if not record:
        raise SystemExit(
            f"{relative(source)} has no model_card.json: it was not written by an hf_vqgen training script."
        )
    earlier_card = training_record(target)
    earlier = earlier_card.get("metrics", {})
    before = weights_digest(target)
    model = save(target)
    kept = {}
    if dtype == torch.float32:
        kept = {label: values for label, values in earlier.items() if not owned(label)}
        if kept and weights_digest(target) != before:  # measured on other weights
            print(
                f"{relative(target)}: new weights; the card drops the figures measured on the old ones: {list(kept)}"
            )
            kept = {}
        metrics = record.get("metrics", {}) | metrics
    else:
        metrics = {}
    if sample_args is not None:
        data = ["--dataset_name", record["dataset"]] if record.get("dataset") else []  # the test images completed
        data += ["--images_dir", args.images_dir] if args.images_dir else []
        layout = ["--samples_per_class", args.samples_per_class, "--classes_per_row", args.classes_per_row]
        run_script("sample", "--pipeline", target, "--output_dir", target, *layout, "--num_completions", 8, *data,
                   *sample_args)  # fmt: skip
        facts = model_facts(model.vqvae, model.layout, getattr(model, "scheduler", None))
    else:
        shutil.copy2(source / "reconstructions.png", target / "reconstructions.png")
        facts = model_facts(model)
    context = card_context(record, facts, kept, metrics)
    prior_config = getattr(getattr(model, "prior_model", None), "config", None)  # None for a tokenizer
    if getattr(prior_config, SAMPLING_DEFAULTS_KEY, None):  # set by --ar/diffusion_sampling_defaults
        context["sampling_defaults"] = model.sampling_defaults
        context["sampling_defaults_source"] = relative(args.results_dir / "sampling_sweep.json")
    if scheduler_settings:
        context["scheduler_settings"] = {name: model.scheduler.config[name] for name in scheduler_settings}
    limitations = args.limitations if args.limitations is not None else earlier_card.get("limitations")
    if limitations:
        context["limitations"] = limitations
    write_model_card(target, context)


def save_tokenizer(source: Path, dtype: torch.dtype):
    def save(target: Path) -> VQVAEModel:
        VQVAEModel.from_pretrained(source).to(dtype).save_pretrained(target)
        return VQVAEModel.from_pretrained(target)  # float32 again, as users get it

    return save


def run_scheduler(run: Path) -> DiscreteDiffusionScheduler | None:
    """The scheduler saved with the pipeline run `run` (None for an AR run, which has none)."""
    folder = run / "scheduler"
    return DiscreteDiffusionScheduler.from_pretrained(folder) if folder.is_dir() else None


def save_pipeline(source: Path, dtype: torch.dtype, sampling_defaults: dict, scheduler_settings: dict | None = None):
    def save(target: Path):
        pipeline = load_pipeline(source)
        for component in pipeline.components.values():
            if isinstance(component, torch.nn.Module):
                component.to(dtype)
        if scheduler_settings:  # rebuilt from the saved config, as sweep_sampling.py scores it
            apply_scheduler_settings(pipeline, scheduler_settings)
        if sampling_defaults:
            pipeline.set_sampling_defaults(**sampling_defaults)  # checked as a call checks them
        pipeline.save_pretrained(target)
        return load_pipeline(target)  # float32 again, as users get it

    return save


def main() -> None:
    args = parse_args()
    dtype = DTYPES[args.dtype]
    runs = args.runs_dir
    for kind in ("ar", "diffusion"):  # a name of the run's scheduler config is saved in the scheduler
        scheduler = run_scheduler(runs / getattr(args, f"{kind}_run"))
        call, overrides = split_scheduler_settings(scheduler, getattr(args, f"{kind}_sampling_defaults"))
        setattr(args, f"{kind}_sampling_defaults", call)
        setattr(args, f"{kind}_scheduler_settings", overrides)
    metrics = benchmark_metrics(args) if dtype == torch.float32 else {"tokenizer": {}, "ar": {}, "diffusion": {}}
    prefix = args.name_prefix or training_record(runs / args.tokenizer_run).get("dataset", "").replace("_", "-")
    if not prefix:
        raise SystemExit(
            f"{relative(runs / args.tokenizer_run)} names no dataset in its model card: pass --name_prefix"
        )
    shipped = args.output_dir / prefix
    diffusion = ["--num_inference_steps", args.diffusion_steps, "--guidance_scale", args.diffusion_guidance_scale]
    strips = ["--strip_temperatures", *args.strip_temperatures] if args.strip_temperatures else []
    # (how the weights are saved, the sample.py arguments of the shipped samples; none: a tokenizer); a pipeline
    # with saved sampling defaults is sampled with them
    ar, diffusion_defaults = args.ar_sampling_defaults, args.diffusion_sampling_defaults
    kinds = {
        "tokenizer": (save_tokenizer(runs / args.tokenizer_run, dtype), None),
        "ar": (
            save_pipeline(runs / args.ar_run, dtype, ar),
            [] if ar else ["--guidance_scale", args.ar_guidance_scale],
        ),
        "diffusion": (
            save_pipeline(runs / args.diffusion_run, dtype, diffusion_defaults, args.diffusion_scheduler_settings),
            [*([] if diffusion_defaults else diffusion), "--gif", *strips],
        ),
    }
    for kind in args.kinds:
        saver, sampling = kinds[kind]
        source = runs / getattr(args, f"{kind}_run")
        overrides = getattr(args, f"{kind}_scheduler_settings", None)
        ship(source, Path(f"{shipped}-{kind}"), dtype, metrics[kind], saver, sampling, args, overrides)
    print(f"Shipped to {relative(args.output_dir)}")


if __name__ == "__main__":
    main()
