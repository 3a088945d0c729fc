"""What the benchmark scripts share: the machine a figure was measured on, how a call is timed (`time_calls`, the one
timing loop every speed figure comes from), the process's memory high-water mark, the AR / diffusion crossover batch
size, the example scripts run as commands, what a saved run says about itself, and
results files that name what they scored, with which settings, by which command.

Imported as `from common import ...`: `python benchmarks/<script>.py` puts this folder on `sys.path` by itself.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hf_vqgen import load_image_dataset
from hf_vqgen.training.arguments import recipe_flags
from hf_vqgen.utils import command_line, peak_rss_mib, portable_path, reset_peak_rss, rss_mib  # noqa: F401 (scripts import them from here)


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "runs"
RECIPES = ROOT / "examples" / "recipes"


def machine() -> dict:
    """The CPU, torch threads, OpenMP wait policy, library versions and GPUs (if any) a figure was measured with."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    record = {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        # PASSIVE (set for multi-process runs) slows small-op loops such as KV-cached sampling; recorded so figures
        # taken under different policies are not compared blindly.
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "torch": torch.__version__,
        "python": sys.version,
    }
    for library in ("transformers", "diffusers", "accelerate"):
        record[library] = importlib.metadata.version(library)
    cuda = torch.cuda.is_available()
    record["num_gpus"] = torch.cuda.device_count() if cuda else 0
    if cuda:
        gpu = torch.cuda.get_device_properties(0)
        record |= {"gpu_name": gpu.name, "gpu_memory_gib": gpu.total_memory / 2**30,
                   "compute_capability": f"{gpu.major}.{gpu.minor}", "cuda": torch.version.cuda,
                   "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported()}  # fmt: skip
    return record


# timing


@dataclass(frozen=True)
class Timing:
    """Wall seconds of the timed calls of `time_calls` and of its first warm-up call."""

    seconds: tuple[float, ...]
    warmup_s: float

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_calls(
    fn: Callable[[], object], repeats: int, warmups: int = 1, synchronize: Callable[[], None] | None = None
) -> Timing:
    """Time `repeats` calls of `fn` after `warmups` untimed ones (first calls allocate, pick kernels and compile).
    `synchronize` (e.g. `torch.cuda.synchronize`) runs after every call, inside the timed span, so that queued
    device work is counted. Speed figures report the median: on shared machines the best is luck and the mean is
    dominated by the odd stall."""
    if repeats < 1 or warmups < 0:
        raise ValueError(f"`repeats` must be >= 1 and `warmups` >= 0, got {repeats} and {warmups}.")
    sync = synchronize or (lambda: None)

    def timed_call() -> float:
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    warmup_s = [timed_call() for _ in range(warmups)]
    return Timing(tuple(timed_call() for _ in range(repeats)), warmup_s[0] if warmup_s else float("nan"))


# sampling figures


def crossover_batch_size(ar: dict[int, dict], diffusion: dict[int, dict]) -> int | str:
    """The smallest batch size measured for both samplers (batch size -> a row with `images_per_s`) at which the
    autoregressive one makes more images/s than the diffusion one; "none in range" when it never does."""
    both = sorted(ar.keys() & diffusion)
    wins = [batch for batch in both if ar[batch]["images_per_s"] > diffusion[batch]["images_per_s"]]
    return wins[0] if wins else "none in range"


# running the example scripts


def relative(path: str | os.PathLike) -> str:
    """`path` relative to the repository when it lies inside it (how a command run from the repository names it),
    else absolute."""
    resolved = Path(path).expanduser().resolve()
    return resolved.relative_to(ROOT).as_posix() if ROOT in resolved.parents else str(resolved)


def local(name_or_path: str | os.PathLike) -> str | Path:
    """A path a results file records (repo-relative) as a path on this machine; a repo id as it is."""
    candidate = ROOT / name_or_path
    return candidate if candidate.exists() else name_or_path


def run_script(script: str, *args) -> None:
    """Run `examples/<script>.py` with `args` as its own process from the repository root (the environment is
    inherited), as a user would; its results are then read from the files it writes."""
    argv = [relative(arg) if isinstance(arg, Path) else str(arg) for arg in args]
    print(f"$ python examples/{script}.py {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, f"examples/{script}.py", *argv], cwd=ROOT, check=True)


def read_json(path: str | os.PathLike, produced_by: str | None = None) -> dict:
    """A JSON file a run wrote; a missing one names the step that writes it."""
    path = Path(path)
    if not path.is_file():
        hint = f": run {produced_by} first" if produced_by else ""
        raise SystemExit(f"{relative(path)} does not exist{hint}.")
    return json.loads(path.read_text())


def training_record(folder: str | os.PathLike) -> dict:
    """What a training script recorded about a run in `<folder>/model_card.json`: `dataset`, `command`,
    `hyperparameters`, `metrics` (empty when the folder has no card)."""
    path = Path(folder) / "model_card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def dataset_arguments(tokenizer_dir: str | os.PathLike, scoring: bool = False) -> list[str]:
    """The data arguments the tokenizer in `tokenizer_dir` was trained with (`--dataset_name`, `--train_data_dir`,
    ...), so that encoding and scoring use the same images; none when its card is missing (the scripts' defaults).
    `scoring`: only what examples/evaluate.py takes (`--dataset_name`)."""
    hyperparameters = training_record(tokenizer_dir).get("hyperparameters", {})
    if scoring and hyperparameters.get("train_data_dir") is not None:
        raise SystemExit(
            f"{relative(tokenizer_dir)} was trained on --train_data_dir {hyperparameters['train_data_dir']}: "
            "examples/evaluate.py scores against a named dataset (--dataset_name) only."
        )
    keys = ("dataset_name",) if scoring else ("dataset_name", "train_data_dir", "image_column", "resize_mode")
    argv = []
    for key in keys:
        if hyperparameters.get(key) is not None:
            argv += [f"--{key}", str(hyperparameters[key])]
    return argv


def recipe_values(recipe: str | os.PathLike, flag: str) -> list[str]:
    """The values a recipe file gives `flag` (e.g. the prior recipe's `--label_columns`, which the tokens must be
    encoded with); [] when it does not set it."""
    values = recipe_flags(recipe).get(flag.removeprefix("--"), [])
    return values if isinstance(values, list) else []


# results files


def portable(value):
    """`value` with every path in it as a results file records it: repo-relative, never this machine's."""
    if isinstance(value, Path) or (isinstance(value, str) and os.path.isabs(value)):
        return portable_path(value, ROOT)
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    return value


def settings_of(args) -> dict:
    """A script's arguments as its results file records them."""
    return portable(vars(args))


def write_report(path: str | os.PathLike, report: dict, command: str | None = None, echo: bool = True) -> dict:
    """Write `report` to `path` as JSON with portable paths and the command that produced it (this process's, unless
    given), print it (unless not `echo`), and return what was written."""
    report = portable({**report, "command": command or command_line(root=ROOT)})
    missing = [key for key in ("scored", "settings") if key not in report]
    if missing:
        raise ValueError(f"A results file must record {missing}: what it scored and with which settings.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    if echo:
        print(json.dumps(report, indent=2))
    return report


def append_row(path: str | os.PathLike, row: dict, header: dict, scored: str, command: str) -> None:
    """Add one row to the rows of the results file `path`, read again under a lock right before writing, so that
    several runs appending to one file (two sweeps on two cores) keep each other's rows. `header`: the file's
    `benchmark` and this run's `settings`; `scored` joins its list; the row records its `command`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(path.read_text()) if path.is_file() else {}
        report |= header | {"machine": machine()}
        report["scored"] = list(dict.fromkeys([*report.get("scored", []), scored]))
        report.setdefault("rows", []).append(portable(row | {"command": command}))
        write_report(path, report, command=command, echo=False)


def calibration_table(rows: dict[str, dict]) -> str:
    """benchmarks/calibrate_metrics.py's rows (image set -> metrics) as a markdown table; with class agreement
    columns when rows have them (how often the feature network names each image's own classes: the ceiling of a
    prior's conditioning figures)."""
    columns = ("fid", "kid", "precision", "recall", "classifier_score", "recognisability")
    num_reference = next(iter(rows.values())).get("num_reference")  # the reference split's size, as scored
    reference = ""
    if num_reference:
        reference = f"{num_reference // 1000}k " if num_reference % 1000 == 0 else f"{num_reference:,}-image "
    agreement = next((row["conditioning"] for row in rows.values() if row.get("conditioning")), {})
    agreement_keys = sorted(agreement, key=lambda key: (key == "accuracy", key))  # per column, then all columns
    agreement_names = [key.removeprefix("accuracy_") if key != "accuracy" else "all classes" for key in agreement_keys]
    lines = [
        f"| image set (vs the {reference}test split) | n | FID | KID | precision | recall | classifier score "
        "| recognisability |" + "".join(f" agreement: {name} |" for name in agreement_names)
    ]
    lines.append("|---|---|---|---|---|---|---|---|" + "---|" * len(agreement_keys))
    for name, metrics in rows.items():
        # FID and KID of identical sets come out as -0.00 or so from float error: shown as 0
        cells = [
            "–" if metrics.get(c) is None else f"{metrics[c]:.4f}" if c == "kid" else f"{metrics[c]:.2f}"
            for c in columns
        ]
        cells = [cell.replace("-0.00", "0.00") if set(cell) <= set("-0.") else cell for cell in cells]
        conditioning = metrics.get("conditioning") or {}
        cells += [f"{conditioning[key]:.1%}" if key in conditioning else "–" for key in agreement_keys]
        lines.append(f"| {name} | {metrics['num_samples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recognisability_table(report: dict, column: str) -> str:
    """benchmarks/recognisability_by_category.py's means for one label column (a row per class, a column per image
    set) as a markdown table."""
    sets = report["rows"]
    lines = [f"| {column} | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for index, name in enumerate(report["class_names"][column]):
        cells = ["–" if means[column][index] is None else f"{means[column][index]:.3f}" for means in sets.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def classes_cycled(labels: torch.Tensor, num_images: int, seed: int = 0) -> torch.Tensor:
    """Indices of `num_images` rows whose labels cycle through the classes present (0, 1, ..., 0, 1, ...), each
    class's rows in a seeded random order; a class with fewer rows than its share repeats them."""
    generator = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    rows = [torch.nonzero(labels == value).flatten() for value in classes]
    rows = [members[torch.randperm(len(members), generator=generator)] for members in rows]
    picks = [rows[i % len(classes)][(i // len(classes)) % len(rows[i % len(classes)])] for i in range(num_images)]
    return torch.stack(picks)


def class_sizes(dataset_name: str, columns: list[str]) -> dict[str, int]:
    return {
        column: load_image_dataset(dataset_name, label_column=column).features["label"].num_classes
        for column in columns
    }
