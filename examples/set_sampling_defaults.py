#!/usr/bin/env python
"""Store sampling settings in a saved pipeline, so that a call that does not name them uses them (as transformers'
`generation_config` does), and say so in its model card.

    python examples/set_sampling_defaults.py --pipeline pretrained/emoji-ar guidance_scale=1.5 temperature=0.9
    python examples/set_sampling_defaults.py --pipeline pretrained/emoji-diffusion num_inference_steps=16 \
        choice_temperature=8 --source "benchmarks/results/emoji/sampling_sweep.json"

A name of the scheduler's config (diffusion's `choice_temperature`) is saved in the scheduler, as diffusers sets one
(`Scheduler.from_config(pipeline.scheduler.config, name=value)`); the others as the call's defaults. The folder is
rewritten in one atomic step (its other files kept); the settings are checked as a call checks them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from hf_vqgen import load_pipeline
from hf_vqgen.model_cards import CONTEXT_FILE, write_model_card
from hf_vqgen.pipelines.token_pipeline import apply_scheduler_settings, split_scheduler_settings
from hf_vqgen.training.export import export_atomically
from hf_vqgen.utils import parse_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="A saved pipeline folder.")
    parser.add_argument("settings", nargs="+", help="name=value pairs, e.g. temperature=0.9 top_k=100.")
    parser.add_argument("--source", default=None, help="Where the settings were chosen (named in the card).")
    args = parser.parse_args(argv)
    try:
        args.settings = parse_settings(args.settings)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(args: argparse.Namespace) -> dict:
    folder = Path(args.pipeline)
    pipeline = load_pipeline(folder)
    call, scheduler_settings = split_scheduler_settings(getattr(pipeline, "scheduler", None), args.settings)
    if scheduler_settings:
        apply_scheduler_settings(pipeline, scheduler_settings)
    if call:
        pipeline.set_sampling_defaults(**call)  # refuses names and values a call would refuse
    context_file = folder / CONTEXT_FILE
    context = json.loads(context_file.read_text()) if context_file.is_file() else None

    def write(staging: Path) -> None:
        for entry in folder.iterdir():  # everything but the components, which are saved anew
            if entry.is_file() and entry.name not in ("model_index.json", "pipeline.py"):
                (staging / entry.name).write_bytes(entry.read_bytes())
            elif entry.is_dir() and not (entry / "config.json").is_file() and not entry.name == "scheduler":
                shutil.copytree(entry, staging / entry.name)
        pipeline.save_pretrained(staging)
        if context is not None:
            context["sampling_defaults"] = pipeline.sampling_defaults
            if scheduler_settings:
                context["scheduler_settings"] = context.get("scheduler_settings", {}) | scheduler_settings
            if args.source:
                context["sampling_defaults_source"] = args.source
            write_model_card(staging, context)

    export_atomically(folder, write)
    print(json.dumps(pipeline.sampling_defaults))
    return pipeline.sampling_defaults


if __name__ == "__main__":
    main(parse_args())
