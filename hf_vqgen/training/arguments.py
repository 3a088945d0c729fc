"""Command-line arguments every training script shares (Accelerate, checkpoints, logging, Hub)."""

from __future__ import annotations

import argparse
import importlib.util

import torch


def _recipe_line_to_args(line: str) -> list[str]:
    """`@recipe.args` files: any number of arguments per line, `#` starts a comment."""
    return line.split("#", 1)[0].split()


def recipe_flags(path) -> dict[str, list[str] | bool]:
    """A recipe file read as the scripts read it (`@recipe.args`): `{flag: [values]}`, `True` for a bare switch.
    The one parser of recipes: the benchmarks read them through it too."""
    flags, flag = {}, None
    with open(path) as file:
        words = [word for line in file for word in _recipe_line_to_args(line)]
    for word in words:
        if word.startswith("--"):
            flag = word[2:]
            flags[flag] = True  # a switch, unless values follow
        elif flag is None:
            raise ValueError(f"{path}: {word!r} comes before any --flag.")
        else:
            flags[flag] = [*flags[flag], word] if isinstance(flags[flag], list) else [word]
    return flags


def recipe_parser(description: str | None) -> argparse.ArgumentParser:
    """An `ArgumentParser` that also reads `@file` recipes (later arguments override the file's)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter, fromfile_prefix_chars="@"
    )
    parser.convert_arg_line_to_args = _recipe_line_to_args
    return parser


def add_optimization_arguments(group: argparse._ArgumentGroup, max_train_steps: int, learning_rate: float) -> None:
    group.add_argument("--train_batch_size", type=int, default=64, help="Per device.")
    group.add_argument("--eval_batch_size", type=int, default=256)
    group.add_argument("--max_train_steps", type=int, default=max_train_steps)
    group.add_argument("--learning_rate", type=float, default=learning_rate)
    group.add_argument("--lr_scheduler", default="cosine")
    group.add_argument("--lr_warmup_steps", type=int, default=100)
    group.add_argument("--max_grad_norm", type=float, default=1.0)


def add_accelerate_arguments(group: argparse._ArgumentGroup, checkpointing_steps: int, validation_steps: int) -> None:
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--mixed_precision", default=None, choices=("no", "fp16", "bf16"))
    group.add_argument("--compile", action="store_true", help="torch.compile the model being trained (Accelerate).")
    group.add_argument(
        "--compile_backend",
        default="inductor",
        choices=("inductor", "aot_eager", "eager", "cudagraphs"),
        help="Dynamo backend for --compile (aot_eager: no code generation, for checking the path quickly).",
    )
    group.add_argument("--checkpointing_steps", type=int, default=checkpointing_steps)
    group.add_argument("--checkpoints_total_limit", type=int, default=None)
    group.add_argument("--resume_from_checkpoint", default=None, help='A checkpoint folder or "latest".')
    group.add_argument("--validation_steps", type=int, default=validation_steps)
    group.add_argument("--report_to", default="tensorboard", help='"tensorboard", "wandb", ... or "none".')
    group.add_argument("--logging_dir", default="logs", help="Relative to --output_dir.")
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", default=None)


def check_training_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error for the shared arguments' invalid values."""
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id")
    positive = ("max_train_steps", "train_batch_size", "eval_batch_size")
    for name in (*positive, "gradient_accumulation_steps", "checkpointing_steps", "validation_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        parser.error("--checkpoints_total_limit must be >= 1 (leave it out to keep every checkpoint)")
    minutes = getattr(args, "max_train_minutes", None)
    if minutes is not None and minutes <= 0:
        parser.error("--max_train_minutes must be > 0 (a run of 0 minutes would export an untrained model)")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        parser.error(
            "--mixed_precision fp16 needs a CUDA GPU (on CPU it would silently run in float32): use bf16 or no"
        )
    for tracker in args.report_to.split(","):
        if tracker not in ("none", "all", "tensorboard") and importlib.util.find_spec(tracker) is None:
            parser.error(f"--report_to {tracker}: the {tracker} package is not installed (pip install {tracker})")
    if args.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        parser.error(
            "--report_to tensorboard: tensorboard is not installed (pip install tensorboard, or --report_to none)"
        )
