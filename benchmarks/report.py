#!/usr/bin/env python
"""Collect benchmarks/results/*.json into benchmarks/results/README.md (every table, each naming what it scored,
with which settings, by which command; then the measurement log in benchmarks/results/NOTES.md) and a
quality-vs-speed plot. Reads the JSON files only: it needs no model and no `runs/` folder.

    python benchmarks/report.py   # the last step of `make bench`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import RESULTS, calibration_table, recognisability_table


NOTES = "NOTES.md"  # the measurement log: prose that no JSON can generate
HEADER = """# Benchmark results

Written by `benchmarks/report.py` from the JSON files beside it: `make bench` runs every benchmark, then the report;
`python benchmarks/report.py` only renders it again. Each JSON names what it scored (`scored`: repo-relative paths or
repo ids), its `settings`, the `command` that produced it and the machine; results committed before those fields
existed say in their `provenance` how the fields were added. The runs themselves (`benchmarks/results/runs/`) are not
committed.
"""


# helpers


def load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def table(header: str, rows: list[list]) -> list[str]:
    """A markdown table: `header` is its first row ("a | b | c"), `rows` the cells."""
    lines = [f"| {header} |", "|" + "---|" * len(header.split(" | "))]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def code(value) -> str:
    """What a results file scored, for a table: `path`, `a`, `b` (a description stays plain text)."""
    if isinstance(value, dict):
        value = list(value.values())
    values = value if isinstance(value, list) else [value]
    return ", ".join(str(item) if " " in str(item) else f"`{item}`" for item in values)


def source(name: str, report: dict) -> str:
    """The line under a table naming its JSON, what it scored and the command."""
    line = f"`{name}.json`: scored {code(report.get('scored', 'not recorded'))}; `{report.get('command', '?')}`"
    return line + (" (see its `provenance`)." if "provenance" in report else ".")


def number(value, digits: int = 2) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"  # None / NaN: not measured


def machine_line(report: dict) -> str:
    machine = report["machine"]
    return (
        f"{machine['cpu']}, {machine['torch_threads']} torch threads, OpenMP wait policy "
        f"{machine.get('omp_wait_policy', 'not recorded')}, torch {machine['torch']}"
    )


# labels: read from each result's recorded settings


def sampling_label(settings: dict, corruption: str | None = None) -> str:
    """E.g. "GPT-2 prior, guidance 1.5" or "discrete diffusion (absorbing), 8 steps, guidance 2", from the settings
    examples/evaluate.py records."""
    if settings.get("pipeline_class") == "DiscreteDiffusionPipeline":
        kind = "discrete diffusion" + (f" ({corruption})" if corruption else "")
        parts = [kind, f"{settings['num_inference_steps']} steps"]
    else:
        parts = ["GPT-2 prior"]
    parts.append(f"guidance {settings['guidance_scale']:g}")
    if settings.get("temperature", 1.0) != 1.0:
        parts.append(f"temperature {settings['temperature']:g}")
    for key in ("top_k", "top_p"):
        if settings.get(key) is not None:
            parts.append(f"{key.replace('_', '-')} {settings[key]:g}")
    return ", ".join(parts)


def evaluator_line(settings: dict) -> str:
    return (
        f"examples/evaluate.py, seed {settings['seed']}, classes cycled evenly, vs the {settings['dataset_name']} "
        f"{settings['split']} split, features of `{settings['feature_extractor']}`"
    )


# sections, one per benchmark


def tokenizer_section(report: dict, rfids: dict[str, tuple[float, str]]) -> list[str]:
    rows = []
    for name, run in report["variants"].items():
        codes = run.get("tokenizer", {}).get("num_codes")
        used = f"{run['codebook_usage']:.0%}" + (f" of {codes}" if codes else "")
        rfid, rfid_source = rfids.get(run.get("scored"), (None, None))
        rows.append([name, code(run.get("scored", "?")), run["train_steps"], f"{run['train_minutes']:.1f}",
                     f"{run['psnr']:.2f}", number(run.get("ssim"), 3), used, f"{run['perplexity']:.0f}",
                     number(rfid) + (f" (`{rfid_source}.json`)" if rfid_source else "")])  # fmt: skip
    split = next(iter(report["variants"].values())).get("eval_split", "test")
    header = "variant | scored | steps | minutes | PSNR (dB) | SSIM | codes used | perplexity | rFID"
    lines = [
        "## Tokenizer recipe",
        "",
        *table(header, rows),
        "",
        f"On the full {split} split; rFID: examples/evaluate.py on the reconstructions, where it was run. "
        + source("tokenizer_recipe", report),
    ]
    if "note" in report:
        lines += ["", f"Note recorded with the results: {report['note']}"]
    return lines


def throughput_section(report: dict) -> list[str]:
    size = report.get("image_size")
    shape = f" on {size[1]}×{size[2]}×{size[0]} images" if size else ""
    rows = [
        [row["batch_size"], f"{row['encode_images_per_s']:.0f}", f"{row['decode_images_per_s']:.0f}"]
        for row in report["tokenization"]
    ]
    training = report["training"]
    return [
        f"## Tokenizer throughput{shape}",
        "",
        *table("batch size | encode images/s | decode images/s", rows),
        "",
        f"Training: {training['train_samples_per_s']:.0f} samples/s at batch {training['batch_size']}. "
        f"{machine_line(report)}. " + source("throughput", report),
    ]


def prior_section(report: dict, tokenizer_eval: dict | None) -> list[str]:
    settings, rfid = report["sampling"]["settings"], report["tokenizer_rfid"]
    floor = "tokenizer reconstructions (rFID, the floor for any prior on these tokens)"
    if tokenizer_eval is not None:
        m = tokenizer_eval["metrics"]
        rows = [[floor, f"{m['fid']:.2f}", 1, f"{m['kid']:.4f}", f"{m['precision']:.2f}", f"{m['recall']:.2f}", "–"]]
    else:
        rows = [[floor, f"{rfid:.2f}", 1, "", "", "", "–"]]
    entries = [(settings, report["samples"])]
    entries += [(settings | entry, entry["samples"]) for entry in report.get("sweep", []) if entry.get("samples")]
    if "guided" in report:
        guided = report["guided"]
        entries.append((guided.get("sampling", {}).get("settings", settings | guided), guided["samples"]))
    for index, (entry, m) in enumerate(entries):
        label = f"GPT-2 prior, guidance {entry['guidance_scale']:g}, temperature {entry['temperature']:g}"
        bits = f"{m['bits_per_token']:.2f} ({m['bits_per_image']:.0f} bits / image)" if index == 0 else ""
        rows.append([label, f"{m['fid']:.2f}", f"{m['fid'] / rfid:.2f}", f"{m['kid']:.4f}", f"{m['precision']:.2f}",
                     f"{m['recall']:.2f}", bits])  # fmt: skip
    header = " | FID | FID / rFID | KID | precision | recall | held-out bits / token"
    return [
        "## Autoregressive prior",
        "",
        f"{report['prior']['train_steps']} training steps, {report['train_minutes']:.1f} minutes; "
        f"{settings['num_samples']} samples scored by {evaluator_line(settings)}.",
        "",
        *table(header, rows),
        "",
        source("prior_recipe", report),
    ]


def ar_sampling_section(reports: dict[str, dict]) -> list[str]:
    rows = []
    for name, report in reports.items():
        machine = report["machine"]
        for key, row in report.items():
            if key.startswith("guidance_"):
                rows.append([f"`{name}.json`", machine["torch_threads"], machine.get("omp_wait_policy", "?"),
                             report["batch_size"], key.removeprefix("guidance_"),
                             f"{row['kv_cache_images_per_s']:.1f}", f"{row['recompute_images_per_s']:.1f}",
                             f"{row['speedup']:.1f}×"])  # fmt: skip
    header = (
        "results | torch threads | OpenMP wait policy | batch | guidance | KV cache images/s | "
        "recompute images/s | speedup"
    )
    lines = ["## Autoregressive sampling: KV cache vs full recompute", "", *table(header, rows), ""]
    return lines + [f"- {source(name, report)}" for name, report in reports.items()]


def diffusion_section(report: dict) -> list[str]:
    lines = ["## Discrete diffusion vs the autoregressive prior (same tokens, same training steps)", ""]
    evaluation = report.get("settings", {}).get("evaluation")
    if evaluation:
        lines += [
            f"{report['train_steps']} training steps each; {report['num_samples']} samples per row scored by "
            f'{evaluator_line(evaluation)}; sampling timed with `output_type="token_ids"`.',
            "",
        ]
    rows = []
    for row in report["rows"]:
        rows.append([row["prior"], code(row.get("scored", "?")), row["steps"], f"{row.get('guidance_scale', 1.0):g}",
                     f"{row['train_minutes']:.1f}", f"{row['fid']:.2f}", number(row.get("fid_over_ar", 1.0)),
                     f"{row['precision']:.2f}", f"{row['recall']:.2f}", f"{row['images_per_second_batch100']:.1f}",
                     f"{row['images_per_second_batch1']:.1f}"])  # fmt: skip
    header = (
        "prior | scored | steps | guidance | train minutes | FID | FID / AR | precision | recall | "
        "images/s, batch 100 | images/s, batch 1"
    )
    lines += [*table(header, rows), "", source("diffusion_recipe", report)]
    if "retime_command" in report:
        lines[-1] += f" Sampling speed from `{report['retime_command']}` ({machine_line(report)})."
    return lines + ["", "![FID vs sampling time](fid_vs_sampling_time.png)"]


def sweep_section(report: dict) -> list[str]:
    lines = ["## Discrete-diffusion sampling settings", ""]
    settings = report.get("settings", {})
    if settings:
        lines += [
            f"Each row: {settings['num_samples']} samples, seed {settings['seed']}, classes cycled evenly, vs "
            f"the {settings['dataset_name']} test split, features of `{settings['feature_extractor']}`.",
            "",
        ]
    order = sorted(
        report["rows"], key=lambda r: (r["pipeline"], r["steps"], r["guidance_scale"], r["choice_temperature"])
    )
    rows = [
        [
            f"`{row['pipeline']}`",
            row["steps"],
            f"{row['temperature']:g}",
            f"{row['choice_temperature']:g}",
            f"{row['guidance_scale']:g}",
            f"{row['fid']:.2f}",
            f"{row['precision']:.2f}",
            f"{row['recall']:.2f}",
            f"{row['images_per_second']:.1f}",
        ]
        for row in order
    ]
    header = (
        "scored | steps | temperature | MaskGIT choice temperature | guidance | FID | precision | recall | images/s"
    )
    return lines + [
        *table(header, rows),
        "",
        source("diffusion_sampling_sweep", report) + " Each row records its command.",
    ]


def sampling_speed_section(report: dict) -> list[str]:
    peak = report["matmul_peak"]
    rows = []
    for name, sampler in report["samplers"].items():
        for batch, row in sampler["batch_sizes"].items():
            if "skipped" in row:
                rows.append([name, sampler["steps"], batch, f"skipped: {row['skipped']}", "", "", "", ""])
                continue
            rows.append([name, sampler["steps"], batch, f"{row['latency_s']:.3g}", f"{row['images_per_s']:.3g}",
                         f"{row['gflop_per_s']:.1f}", f"{100 * row['fraction_of_matmul_peak']:.1f}%",
                         f"{row['peak_rss_mib']:.0f}"])  # fmt: skip
    header = "sampler | forward passes | batch | latency (s) | images/s | GFLOP/s | of matmul peak | peak RSS (MiB)"

    def listed(key: str, unit: str = "") -> str:
        return ", ".join(
            f"{k}: {v:.2f}{unit}" if isinstance(v, float) else f"{k}: {v}" for k, v in report[key].items()
        )

    return [
        "## Sampling speed (token ids, no decoding)",
        "",
        *table(header, rows),
        "",
        f"- KV cache speed-up over full recompute, by batch size: {listed('kv_cache_speedup', '×') or 'n/a'}",
        f"- AR / diffusion latency at batch 1, by diffusion steps: "
        f"{listed('ar_over_diffusion_latency_batch1', '×') or 'n/a'}",
        f"- smallest measured batch where the KV-cached AR prior makes more images/s than diffusion, by steps: "
        f"{listed('crossover_batch_size') or 'n/a'}",
        f"- matmul peak {peak['gflop_per_s']:.1f} GFLOP/s ({peak['size']}² fp32; before / after the run: "
        f"{peak['before_gflop_per_s']:.1f} / {peak['after_gflop_per_s']:.1f}); peak RSS {report['rss_scope']}; "
        f"{machine_line(report)}.",
        "",
        source("sampling_speed", report),
    ]


def training_memory_section(report: dict) -> list[str]:
    rows = [
        [f"`{recipe}`", row["train_steps"], f"{row['peak_rss_mib']:.0f}"] for recipe, row in report["recipes"].items()
    ]
    return [
        "## Training memory",
        "",
        *table("recipe | steps run | peak RSS (MiB)", rows),
        "",
        f"One process, the recipe's batch and model; the script's RSS high-water mark over its steps, evaluation and "
        f"export. {machine_line(report)}. " + source("training_memory", report),
    ]


def static_cache_section(report: dict) -> list[str]:
    rows = [
        [batch, f"{row['dynamic_cache_images_per_s']:.1f}", f"{row['static_cache_images_per_s']:.1f}",
         f"{row['static_compiled_images_per_s']:.1f}", row["static_same_codes"] and row["compiled_same_codes"]]
        for batch, row in report["batch_sizes"].items()
    ]  # fmt: skip
    header = "batch | dynamic cache images/s | static cache | static cache + torch.compile | same codes"
    return [
        "## Autoregressive sampling: static KV cache and torch.compile",
        "",
        *table(header, rows),
        "",
        f"Compiling and warming up took {report['compile_and_warm_up_seconds']:.0f} s. {machine_line(report)}. "
        + source("ar_static_cache", report),
    ]


def conditioning_section(results: Path) -> list[str]:
    """How often samples show the class they were asked for (examples/evaluate.py's `conditioning`)."""
    reports = {}
    for path in sorted(results.glob("eval_*.json")):
        report = json.loads(path.read_text())
        if report.get("conditioning"):
            reports[path.stem] = report
    if not reports:
        return []
    columns = next(iter(reports.values()))["conditioning"]["label_columns"]
    keys = ["accuracy"] + ([f"accuracy_{column}" for column in columns] if len(columns) > 1 else [])
    rows = []
    for kind, label in (("real_images", "real test images"), ("reconstructions", "their reconstructions (tokenizer)")):
        scored = next((r for r in reports.values() if kind in r["conditioning"]), None)
        if scored is not None:  # ceilings: the classifier on the real images, and on them through the tokenizer
            rows.append([label, "–", "–", *(f"{scored['conditioning'][kind][key]:.1%}" for key in keys), "–"])
    for name, report in sorted(reports.items(), key=lambda item: item[1]["settings"]["guidance_scale"]):
        samples = report["conditioning"]["samples"]
        rows.append([sampling_label(report["settings"]), code(report["scored"]), report["metrics"]["num_samples"]]
                    + [f"{samples[key]:.1%}" for key in keys] + [f"`{name}.json`"])  # fmt: skip
    header = " | scored | n | " + " | ".join(["class", *columns][: len(keys)]) + " | results"
    return [
        "## Does a sample show the class it was asked for?",
        "",
        "The feature classifier's top-1 class of each sample (classes cycled evenly) against the class it was "
        f"conditioned on, and per label column ({', '.join(columns)}); the first rows are the same classifier on the "
        "real test images and on their reconstructions through the tokenizer, in the test split's own class mix (a "
        "classifier biased to the common classes scores higher there than on classes cycled: the calibration tables "
        "with classes cycled, where present, give the ceiling under the samples' protocol).",
        "",
        *table(header, rows),
    ]


def memorisation_section(results: Path) -> list[str]:
    """examples/evaluate.py --memorisation: each sample's nearest training image in feature space."""
    rows = []
    for path in sorted(results.glob("eval_*.json")):
        report = json.loads(path.read_text())
        if report.get("memorisation"):
            m = report["memorisation"]
            rows.append([sampling_label(report["settings"]), code(report["scored"]), report["metrics"]["num_samples"],
                         f"{m['nn_distance_median']:.2f}", f"{m['nn_distance_median_held_out']:.2f}",
                         f"{m['share_closer_than_held_out_1pct']:.1%}", f"`{path.stem}.json`"])  # fmt: skip
    if not rows:
        return []
    header = (
        "samples | scored | n | median distance to the nearest training image | the same for held-out images | "
        "samples closer than the closest 1% of held-out images | results"
    )
    return [
        "## Memorisation check",
        "",
        *table(header, rows),
        "",
        "Distances in the feature network's space; a sample much closer to a training image than held-out images "
        "ever are would be a likely copy (each run's `memorisation.png` shows samples over their nearest neighbours).",
    ]


# every generator scored, side by side


def training_facts(results: Path) -> tuple[dict, dict]:
    """Train minutes (tokenizer + prior) of each prior run and the corruption of each diffusion run, by the path
    the benchmarks that trained them recorded."""
    tokenizer, prior = load(results, "tokenizer_recipe") or {}, load(results, "prior_recipe") or {}
    tokenizer_minutes = {run.get("scored"): run["train_minutes"] for run in tokenizer.get("variants", {}).values()}
    minutes, corruption = {}, {}
    scored = prior.get("scored", {})
    chain = tokenizer_minutes.get(scored.get("tokenizer"), 0.0)
    if scored:
        minutes[scored["pipeline"]] = chain + prior["train_minutes"]
    for row in (load(results, "diffusion_recipe") or {}).get("rows", [])[1:]:
        minutes[row.get("scored")] = chain + row["train_minutes"]
        corruption[row.get("scored")] = row.get("corruption")
    return minutes, corruption


def generator_rows(results: Path) -> list[dict]:
    """One row per scored generator setting (name, scored, train minutes, metrics, sampling images/s, its JSON),
    sorted by sample count, then FID; a setting scored twice at the same n is listed once."""
    minutes, corruption = training_facts(results)
    rows, seen = [], set()

    def add(settings: dict, scored: str, metrics: dict, speed: float, name: str) -> None:
        steps = (
            settings.get("num_inference_steps") if settings["pipeline_class"] == "DiscreteDiffusionPipeline" else None
        )
        key = (scored, steps, settings["guidance_scale"], settings.get("temperature", 1.0), metrics["num_samples"])
        if key not in seen:
            seen.add(key)
            rows.append(
                {
                    "name": "VQ-VAE + " + sampling_label(settings, corruption.get(scored)),
                    "scored": scored,
                    "minutes": minutes.get(scored),
                    "metrics": metrics,
                    "images_per_second": speed,
                    "source": name,
                }
            )

    for path in sorted(results.glob("eval_*.json")):
        report = json.loads(path.read_text())
        if report["settings"].get("pipeline"):  # (a tokenizer's reconstructions are in the prior's table)
            add(
                report["settings"],
                report["scored"],
                report["metrics"],
                report["timings"]["images_per_second"],
                path.stem,
            )
    diffusion = load(results, "diffusion_recipe") or {"rows": []}
    for row in diffusion["rows"][1:]:
        settings = {
            "pipeline_class": "DiscreteDiffusionPipeline",
            "num_inference_steps": row["steps"],
            "guidance_scale": row.get("guidance_scale", 1.0),
        }
        metrics = {"num_samples": diffusion["num_samples"]} | row
        add(settings, row.get("scored"), metrics, row["images_per_second_batch100"], "diffusion_recipe")
    baseline = load(results, "baseline_ddpm")
    if baseline is not None:
        rows.append(
            {
                "name": f"pixel DDPM baseline (UNet2DModel, {baseline['sampling']['scheduler']})",
                "scored": baseline["scored"],
                "minutes": baseline["training"]["train_minutes"],
                "metrics": baseline["metrics"],
                "images_per_second": baseline["sampling"]["images_per_second"],
                "source": "baseline_ddpm",
            }
        )
    return sorted(rows, key=lambda row: (-row["metrics"]["num_samples"], row["metrics"]["fid"]))


def generation_section(rows: list[dict]) -> list[str]:
    body = []
    for row in rows:
        m = row["metrics"]
        body.append([row["name"], code(row["scored"]), number(row["minutes"], 1), m["num_samples"],
                     f"{m['fid']:.2f}", f"{m['kid']:.4f}", f"{m['precision']:.2f}", f"{m['recall']:.2f}",
                     number(row["images_per_second"], 1), f"`{row['source']}.json`"])  # fmt: skip
    header = (
        "model | scored | train minutes (tokenizer + prior) | n | FID | KID | precision | recall | "
        "sampling images/s | results"
    )
    return [
        "## Every generator scored (same evaluator; compare only at equal n)",
        "",
        *table(header, body),
        "",
        "Sampling images/s: examples/evaluate.py's whole sampling loop at batch 100 (decoding included), except the "
        'rows from `diffusion_recipe.json` (token ids only, batch 100). Train minutes: "–" where no benchmark '
        "recorded the run's training.",
        "",
        "![FID vs sampling speed](fid_vs_speed.png)",
    ]


def plot_fid_vs_speed(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(row["metrics"]["num_samples"] for row in rows)
    figure, axis = plt.subplots(figsize=(6, 4))
    for row in rows:
        if row["images_per_second"] is not None and row["metrics"]["num_samples"] == n:
            axis.scatter(row["images_per_second"], row["metrics"]["fid"], label=row["name"].replace("VQ-VAE + ", ""))
    axis.set(xscale="log", xlabel="sampling images / s (CPU)", ylabel=f"FID, n = {n}")
    axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def recognisability_section(report: dict) -> list[str]:
    """benchmarks/recognisability_by_category.py: which rows of a sample grid can be named, against their ceiling."""
    settings = report["settings"]
    lines = [
        f"## Recognisability by category ({settings['num_samples']:,} images per set, classes cycled)",
        "",
        f"Mean top-1 identity probability of `{report['feature_extractor']}`; samples at each pipeline's saved "
        "sampling defaults, reconstructions by each pipeline's own tokenizer.",
    ]
    for column in settings["label_columns"]:
        lines += ["", recognisability_table(report, column)]
    return lines + ["", source("recognisability_by_category", report)]


CALIBRATIONS = (  # the emoji gauges first, the split's own class mix before classes cycled
    "metric_calibration_shape",
    "metric_calibration_shape_even",
    "metric_calibration_global_2k",
    "metric_calibration_global_even",
    "metric_calibration",
)


def calibration_section(report: dict, name: str = "metric_calibration") -> list[str]:
    settings = report["settings"]
    mix = ", train images with classes cycled evenly" if settings.get("class_mix") == "even" else ""
    return [
        f"## Metric calibration ({settings['dataset_name']}, features of `{report['feature_extractor']}`{mix})",
        "",
        calibration_table(report["rows"]),
        "",
        source(name, report) + f" {report['seconds']:.0f} s.",
    ]


def _space(row: dict, name: str, key: str, digits: int = 2) -> str:
    value = (row.get(name) or {}).get(key)
    return number(value, digits) if value is not None else "–"


def _agreement(row: dict, name: str, key: str) -> str:
    value = ((row.get(name) or {}).get("conditioning") or {}).get(key)
    return f"{value:.1%}" if value is not None else "–"


SHAPE, GLOBAL = "emoji_shape_classifier", "emoji_classifier"


def sampling_sweep_section(report: dict) -> list[str]:
    """benchmarks/sweep_sampling.py: each pipeline and setting in both feature spaces, with conditioning."""
    rows = []
    for row in report["rows"]:
        resolved = ", ".join(f"{k} {v}" for k, v in row["resolved"].items() if v is not None)
        if row.get("scheduler"):  # the saved scheduler rebuilt with these for the row (e.g. choice_temperature)
            resolved += "; scheduler: " + ", ".join(f"{k} {v}" for k, v in row["scheduler"].items())
        if row.get("class_mix", "even") != "even":
            resolved += f"; classes: {row['class_mix']} mix"
        rows.append([
            row["pipeline"], resolved, row["num_samples"], _space(row, SHAPE, "fid"),
            _space(row, SHAPE, "recognisability", 3), _space(row, SHAPE, "recognisable_share", 3),
            _space(row, GLOBAL, "fid"), _agreement(row, GLOBAL, "accuracy_label"), _agreement(row, GLOBAL, "accuracy"),
            _agreement(row, SHAPE, "accuracy_label"), number(row["images_per_second"], 1),
        ])  # fmt: skip
    header = (
        "pipeline | sampling | n | FID (shape) | recognisability | share ≥ 0.5 | FID (global) | category (global) "
        "| category × style (global) | category (shape heads) | img/s"
    )
    return [
        "## Sampling settings in both feature spaces",
        "",
        "FID (shape): features of `emoji_shape_classifier` (emoji identities, layout-keeping); recognisability: its mean "
        "top-1 identity probability (share ≥ 0.5: samples it names with probability ≥ 0.5). FID (global): the older "
        "`emoji_classifier`. Conditioning: how often a classifier finds the asked category (× style) in the samples. "
        'Classes are cycled evenly unless a row says "reference mix" (asked in the test split\'s proportions).',
        "",
        *table(header, rows),
        "",
        source("sampling_sweep", report),
    ]


def tokenizer_comparison_section(report: dict) -> list[str]:
    """benchmarks/compare_tokenizers.py: reconstructions of each tokenizer and the same short prior on its codes."""
    spaces = list(report["feature_spaces"])
    header = " | ".join(
        ["tokenizer", "train min", "PSNR", "SSIM", "codes used", "perplexity", "colour error"]
        + [f"rFID ({s})" for s in spaces] + ["prior bits/token"] + [f"sample FID ({s})" for s in spaces]
    )  # fmt: skip
    rows = []
    for name, row in report["tokenizers"].items():
        rec, prior = row["reconstruction"], row["prior"]
        rows.append(
            [f"{name} `{row['tokenizer']}`", number(row["train_minutes"], 0), number(rec["psnr"]), number(rec["ssim"], 3),
             f"{rec['codebook_usage']:.0%}", number(rec["perplexity"], 0), number(rec["mean_colour_error"], 1)]
            + [number(rec[f"rfid_{s}"]) for s in spaces] + [number(prior["eval_bits_per_token"], 3)]
            + [number(prior[f"fid_{s}"]) for s in spaces]
        )  # fmt: skip
    settings = report["settings"]
    return [
        "## Tokenizers compared for generation",
        "",
        f"Each tokenizer's reconstructions of the test split, then the same autoregressive prior "
        f"(`{settings['prior_recipe']}`, {settings['prior_steps']} steps) trained on its codes: held-out bits/token and "
        f"the FID of {settings['num_samples']:,} samples (classes cycled). Colour error: mean absolute difference of each "
        "reconstruction's mean colour from its original's, in 0–255 levels.",
        "",
        *table(header, rows),
        "",
        source("tokenizer_comparison", report),
    ]


def scaling_section(report: dict, figure: Path) -> list[str]:
    """benchmarks/score_checkpoints.py: quality along training runs, and the figure of it."""
    rows = [
        [row["run"], row["step"], number(row["train_minutes"], 0), row["num_samples"], _space(row, SHAPE, "fid"),
         _space(row, SHAPE, "recognisability", 3), _space(row, GLOBAL, "fid"), _agreement(row, GLOBAL, "accuracy_label"),
         _agreement(row, GLOBAL, "accuracy")]
        for row in sorted(report["rows"], key=lambda r: (r["run"], r["step"]))
    ]  # fmt: skip
    plot_scaling(report["rows"], figure)
    header = "run | step | training minutes | n | FID (shape) | recognisability | FID (global) | category | category × style"
    return [
        "## Quality vs training minutes",
        "",
        f"![quality vs minutes]({figure.name})",
        "",
        *table(header, rows),
        "",
        source("scaling_curve", report),
    ]


def plot_scaling(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for run in dict.fromkeys(row["run"] for row in rows):
        points = sorted(
            (r["train_minutes"], r[SHAPE]["fid"], r[SHAPE]["recognisability"]) for r in rows if r["run"] == run
        )
        left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=run)
        right.plot([p[0] for p in points], [p[2] for p in points], marker="o", label=run)
    left.set(xlabel="training minutes (1 CPU thread)", ylabel="FID, shape features (lower is better)", xscale="log")
    right.set(xlabel="training minutes (1 CPU thread)", ylabel="recognisability (higher is better)", xscale="log")
    left.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


# the page


def tokenizer_rfids(results: Path) -> dict[str, tuple[float, str]]:
    """rFID of each tokenizer examples/evaluate.py scored (eval_*.json), by the folder it scored."""
    rfids = {}
    for path in sorted(results.glob("eval_*.json")):
        report = json.loads(path.read_text())
        if report["settings"].get("tokenizer"):
            rfids[report["scored"]] = (report["metrics"]["fid"], path.stem)
    return rfids


def tokenizer_evaluation(results: Path, prior: dict) -> dict | None:
    """examples/evaluate.py's results for the AR benchmark's tokenizer (its rFID, KID, precision, recall)."""
    tokenizer = prior.get("scored", {}).get("tokenizer")
    for path in sorted(results.glob("eval_*.json")):
        report = json.loads(path.read_text())
        if report["settings"].get("tokenizer") and report.get("scored") == tokenizer:
            return report
    return None


def build(results: Path) -> list[str]:
    sections = [HEADER]
    others = [folder.name for folder in sorted(results.iterdir()) if folder.is_dir() and any(folder.glob("*.json"))]
    if others:  # another dataset's results, each folder with its own page (`--results_dir`)
        sections += ["Other datasets: " + ", ".join(f"[{name}]({name}/README.md)" for name in others) + ".", ""]
    report = load(results, "tokenizer_recipe")
    if report is not None:
        sections += tokenizer_section(report, tokenizer_rfids(results)) + [""]
    report = load(results, "throughput")
    if report is not None:
        sections += throughput_section(report) + [""]
    prior = load(results, "prior_recipe")
    if prior is not None:
        sections += prior_section(prior, tokenizer_evaluation(results, prior)) + [""]
    sampling = {path.stem: json.loads(path.read_text()) for path in sorted(results.glob("ar_sampling*.json"))}
    if sampling:
        sections += ar_sampling_section(sampling) + [""]
    for name, section in (("diffusion_recipe", diffusion_section), ("diffusion_sampling_sweep", sweep_section)):
        report = load(results, name)
        if report is not None:
            sections += section(report) + [""]
    for name, section in (
        ("sampling_speed", sampling_speed_section),
        ("ar_static_cache", static_cache_section),
        ("training_memory", training_memory_section),
    ):
        report = load(results, name)
        if report is not None:
            sections += section(report) + [""]
    for section in (conditioning_section(results), memorisation_section(results)):
        if section:
            sections += section + [""]
    rows = generator_rows(results)
    if rows:
        sections += generation_section(rows) + [""]
        plot_fid_vs_speed(rows, results / "fid_vs_speed.png")
    report = load(results, "sampling_sweep")
    if report is not None:
        sections += sampling_sweep_section(report) + [""]
    report = load(results, "tokenizer_comparison")
    if report is not None:
        sections += tokenizer_comparison_section(report) + [""]
    report = load(results, "scaling_curve")
    if report is not None:
        sections += scaling_section(report, results / "scaling_curve.png") + [""]
    report = load(results, "recognisability_by_category")
    if report is not None:
        sections += recognisability_section(report) + [""]
    for name in CALIBRATIONS:
        calibration = load(results, name)
        if calibration is not None:
            sections += calibration_section(calibration, name) + [""]
    if (results / NOTES).is_file():
        sections += [(results / NOTES).read_text().strip(), ""]
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    text = "\n".join(build(args.results_dir))
    (args.results_dir / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
