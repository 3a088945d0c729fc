"""Model cards for trained tokenizers and pipelines, rendered from the templates in `model_cards/` with
`huggingface_hub.ModelCard.from_template`.

A card is rendered from a context saved beside it (`model_card.json`: the kind, the training command and
hyperparameters, the model's facts and every metric measured so far), so that `examples/evaluate.py --update_card`
can add metrics to an existing card and render it again.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .data.registry import DATASETS
from .utils import portable_path


KINDS = {"tokenizer": "tokenizer.md", "ar": "ar_pipeline.md", "diffusion": "diffusion_pipeline.md"}
KIND_NAMES = {"tokenizer": "tokenizer", "ar": "autoregressive pipeline", "diffusion": "discrete-diffusion pipeline"}
CONTEXT_FILE = "model_card.json"
HUB_DATASETS = {name: entry.hub_id for name, entry in DATASETS.items() if entry.hub_id}
# arguments that describe where files go rather than how the model was trained
LOCAL_ARGUMENTS = {"output_dir", "logging_dir", "report_to", "push_to_hub", "hub_model_id", "resume_from_checkpoint"}


def template_path(kind: str, template: str | None = None) -> Path:
    """The template of `kind` (or the file `template`, as a prior kind names its own): from the source tree, else
    from the installed data files."""
    if template is None and kind not in KINDS:
        raise ValueError(f"`kind` must be one of {sorted(KINDS)}, got {kind!r}.")
    name = template or KINDS[kind]
    for folder in (
        Path(__file__).resolve().parents[1] / "model_cards",
        Path(sys.prefix) / "share/hf_vqgen/model_cards",
    ):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"The model card template {name} is not installed.")


def training_context(kind: str, script: str, args, facts: dict, metrics: dict, evaluator: str) -> dict:
    """What a training script knows about its model, for `write_model_card`."""
    hyperparameters = {
        key: value
        for key, value in sorted(vars(args).items())
        if value is not None and key not in LOCAL_ARGUMENTS and value is not False
    }
    command = card_command(hyperparameters, script)
    return {
        "kind": kind,
        "repo_id": getattr(args, "hub_model_id", None),
        # the images the run read: a folder (as given) or a named dataset, never a default it did not use
        "dataset": portable_path(args.train_data_dir)
        if getattr(args, "train_data_dir", None)
        else getattr(args, "dataset_name", None),
        "command": command,
        "hyperparameters": hyperparameters,
        "facts": facts,
        "metrics": {evaluator: metrics},
    }


def card_command(hyperparameters: dict, script: str = "train_prior.py") -> str:
    """The training command a card shows: the script with exactly the recorded hyperparameters."""
    return "accelerate launch " + shlex.join([f"examples/{script}", *_as_argv(hyperparameters)])


def _as_argv(hyperparameters: dict) -> list[str]:
    argv = []
    for key, value in hyperparameters.items():
        argv.append(f"--{key}")
        if value is True:
            continue
        argv += [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return argv


def render_model_card(context: dict, sample_image: str | None = None) -> ModelCard:
    """The card of `context` (see `training_context`)."""
    facts, dataset = context["facts"], context.get("dataset") or "an image dataset"
    hub_dataset = HUB_DATASETS.get(dataset, dataset if "/" in str(dataset) else None)
    repo_id = context.get("repo_id") or "path/to/this/folder"
    eval_results = [
        EvalResult(
            task_type="unconditional-image-generation",
            dataset_type=hub_dataset or dataset,
            dataset_name=dataset,
            dataset_split=metrics.get("split", "test"),
            metric_type=name,
            metric_value=value,
            metric_name=f"{name} ({evaluator})",
        )  # fmt: skip
        for evaluator, metrics in context["metrics"].items()
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    card_data = ModelCardData(
        library_name="hf_vqgen",
        license="apache-2.0",
        datasets=[hub_dataset] if hub_dataset else None,
        tags=[
            "hf_vqgen",
            "vq-vae",
            "image-generation",
            *context.get("tags", ["discrete-diffusion"] if context["kind"] == "diffusion" else []),
        ],
        pipeline_tag="unconditional-image-generation",
        model_name=repo_id.split("/")[-1]
        if context.get("repo_id")
        else f"hf_vqgen {context.get('kind_name') or KIND_NAMES[context['kind']]}",
        eval_results=eval_results or None,
    )
    num_classes = facts.get("num_classes", 0)
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(context["kind"], context.get("template"))),
        model_name=card_data.model_name,
        repo_id=repo_id,
        dataset=dataset,
        command=context["command"],
        hyperparameters=_table(context["hyperparameters"], ("argument", "value")),
        evaluation=_evaluation(context["metrics"]),
        samples=f"![samples]({sample_image})" if sample_image else "",
        conditioning=f"Class-conditional ({num_classes} classes, classifier-free guidance)." if num_classes else "",
        labels_kwarg="class_labels=[0, 1, 2, 3], " if num_classes >= 4 else "",
        data_licences=data_licences(dataset),
        training_summary=_training_summary(context.get("training")),
        sampling_defaults=_sampling_defaults(context.get("sampling_defaults"), context.get("scheduler_settings")),
        limitations=context.get("limitations", ""),
        **facts,
    )


def _training_summary(training: dict | None) -> str:
    """ "Trained for 125 minutes in 2 legs ..." from a run's `training_legs` record."""
    if not training or not training.get("legs"):
        return ""
    legs = training["legs"]
    minutes = sum(leg.get("train_minutes") or 0 for leg in legs)
    steps = sum(leg.get("train_steps") or 0 for leg in legs)
    parts = [f"{leg.get('train_minutes') or 0:.0f} min" for leg in legs]
    count = f"{len(legs)} leg{'s' if len(legs) > 1 else ''}"
    return f"Trained for {minutes:.0f} minutes in {count} ({' + '.join(parts)}; {steps} optimiser steps in all).\n\n"


def _sampling_defaults(defaults: dict | None, scheduler_settings: dict | None = None) -> str:
    """The card's note on the sampling settings saved with the pipeline (what a bare call uses), and on the saved
    scheduler's settings chosen with them (e.g. diffusion's `choice_temperature`)."""
    note = ""
    if defaults:
        settings = ", ".join(f"`{name}={value}`" for name, value in defaults.items())
        note = (
            f"A call that does not name them samples with the defaults saved with this pipeline: {settings} "
            "(`pipeline.sampling_defaults`; chosen by `benchmarks/sweep_sampling.py`).\n\n"
        )
    if scheduler_settings:
        settings = ", ".join(f"`{name}={value}`" for name, value in scheduler_settings.items())
        note += (
            f"Its scheduler is saved with {settings} (`pipeline.scheduler.config`; chosen by the same sweep): every "
            "call samples with it.\n\n"
        )
    return note


def data_licences(dataset: str) -> str:
    """A card section crediting the training images when their licences ask for it (the emoji sets do)."""
    entry = DATASETS.get(dataset)
    return entry.licence_section if entry is not None else ""


def _table(values: dict, header: tuple[str, str]) -> str:
    rows = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    rows += [f"| `{key}` | {_format(value)} |" for key, value in values.items()]
    return "\n".join(rows)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _evaluation(metrics: dict) -> str:
    if not metrics:
        return "Not evaluated yet: run `examples/evaluate.py --update_card`."
    return "\n\n".join(f"Measured by {evaluator}:\n\n" + _table(values, ("metric", "value"))
                       for evaluator, values in metrics.items())  # fmt: skip


def write_model_card(folder: str | os.PathLike, context: dict) -> Path:
    """Render the card of `context` as `folder/README.md` (with `folder/samples.png` shown when present) and save the
    context beside it as `model_card.json`."""
    folder = Path(folder)
    sample = next((name for name in ("samples.png", "reconstructions.png") if (folder / name).is_file()), None)
    render_model_card(context, sample).save(folder / "README.md")
    (folder / CONTEXT_FILE).write_text(json.dumps(context, indent=2, default=str))
    return folder / "README.md"


def update_model_card(folder: str | os.PathLike, evaluator: str, metrics: dict) -> Path:
    """Add (or replace) the metrics measured by `evaluator` in the card of `folder`, and render it again."""
    path = Path(folder) / CONTEXT_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {CONTEXT_FILE}: it was not written by an hf_vqgen training script.")
    context = json.loads(path.read_text())
    context["metrics"][evaluator] = metrics
    return write_model_card(folder, context)


def model_facts(vqvae, layout=None, scheduler=None) -> dict:
    """The template fields that describe a tokenizer and, for a pipeline, its prior."""
    height, width = vqvae.latent_shape
    facts = {
        "resolution": vqvae.config.sample_size,
        "channels": vqvae.config.in_channels,
        "grid": f"{height}×{width}",
        "grid_shape": f"{height}, {width}",
        "num_codes": vqvae.config.num_vq_embeddings,
    }
    if layout is not None:
        facts["num_classes"] = layout.num_classes
    if scheduler is not None:
        config = scheduler.config
        facts["scheduler"] = (
            f"{config.corruption} corruption, {config.schedule} schedule over {config.num_train_timesteps} levels, "
            f"{config.sampler} sampler"
        )
    return facts


def recorded_data_source(folder: str | os.PathLike) -> str | None:
    """The images a saved model was trained on, as its training script recorded them (`--train_data_dir` or
    `--dataset_name` in `model_card.json`); None when the folder has no record."""
    path = Path(folder) / CONTEXT_FILE
    if not path.is_file():
        return None
    context = json.loads(path.read_text())
    hyperparameters = context.get("hyperparameters") or {}
    return hyperparameters.get("train_data_dir") or hyperparameters.get("dataset_name") or context.get("dataset")
