"""The kinds of prior `examples/train_prior.py` trains, one small class each: its token layout, its model, its
training batch and loss targets, the pipeline it ships in. The script picks one from `PRIOR_KINDS` by
`--prior_type` and never asks which kind it holds again; a new kind is a new class here and an entry in the table."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import BertForMaskedLM, GPT2LMHeadModel

from ..pipelines import DiscreteDiffusionPipeline, VQGenPipeline
from ..schedulers import DiscreteDiffusionScheduler
from ..vocabulary import IGNORE_INDEX, TokenLayout
from .priors import build_batch, build_diffusion_batch


class AutoregressivePrior:
    """A stock `GPT2LMHeadModel` over [BOS, class?, codes], next-token cross entropy on the code positions; ships as a
    `VQGenPipeline`. Its held-out loss is an exact likelihood (bits per token and per image)."""

    scheduler = None

    def __init__(self, args: argparse.Namespace):
        self.args = args

    def layout(self, vqvae, num_classes: int) -> TokenLayout:
        return TokenLayout.for_tokenizer(vqvae, num_classes=num_classes)

    def build_model(self, layout: TokenLayout) -> torch.nn.Module:
        args = self.args
        return GPT2LMHeadModel(layout.gpt2_config(args.n_layer, args.n_head, args.n_embd, args.dropout))

    def load_model(self, pipeline_dir: Path) -> torch.nn.Module:
        """The prior of a saved `VQGenPipeline` folder, to continue training it."""
        return GPT2LMHeadModel.from_pretrained(pipeline_dir / "prior", dtype=torch.float32)

    def inputs(self, batch: dict, layout: TokenLayout, class_dropout: float, generator=None):
        """(input_ids, labels) of one batch for the model's loss."""
        return build_batch(batch, layout, class_dropout)

    def num_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """Positions the loss averages over, as a 0-d tensor (GPT-2 shifts its labels by one)."""
        return (labels[:, 1:] != IGNORE_INDEX).sum()

    def pipeline(self, vqvae, model: torch.nn.Module) -> VQGenPipeline:
        return VQGenPipeline(vqvae=vqvae, prior=model)

    def sampling_kwargs(self) -> dict:
        return {}

    def extra_results(self, eval_bits_per_token: float, layout: TokenLayout) -> dict:
        return {"eval_bits_per_image": eval_bits_per_token * layout.num_tokens}


class DiscreteDiffusionPrior:
    """A stock `BertForMaskedLM` denoiser with a `DiscreteDiffusionScheduler` (`--corruption`, `--objective`: see
    `build_diffusion_batch` for the original g(x_b) -> x_a and the x0 objectives); ships as a
    `DiscreteDiffusionPipeline`. Its held-out loss is the training objective's, at fixed noise."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.scheduler = None  # built with the model, once the layout is known

    def layout(self, vqvae, num_classes: int) -> TokenLayout:
        return TokenLayout.for_tokenizer(
            vqvae,
            num_classes=num_classes,
            use_mask_token=self.args.corruption != "uniform",
            num_noise_levels=self.args.num_train_timesteps if self.args.objective == "x0" else 0,
        )

    def build_model(self, layout: TokenLayout) -> torch.nn.Module:
        args = self.args
        self.scheduler = DiscreteDiffusionScheduler(
            layout.num_codes, layout.mask_token_id, args.num_train_timesteps, args.corruption, args.schedule
        )
        return BertForMaskedLM(layout.bert_config(args.n_layer, args.n_head, args.n_embd, args.dropout))

    def load_model(self, pipeline_dir: Path) -> torch.nn.Module:
        """The denoiser (and scheduler) of a saved `DiscreteDiffusionPipeline` folder, to continue training it."""
        self.scheduler = DiscreteDiffusionScheduler.from_pretrained(pipeline_dir / "scheduler")
        return BertForMaskedLM.from_pretrained(pipeline_dir / "denoiser", dtype=torch.float32)

    def inputs(self, batch: dict, layout: TokenLayout, class_dropout: float, generator=None):
        args = self.args
        return build_diffusion_batch(
            batch,
            layout,
            self.scheduler,
            args.objective,
            class_dropout,
            args.extra_corruption,
            args.loss_on,
            generator,
        )

    def num_targets(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels != IGNORE_INDEX).sum()

    def pipeline(self, vqvae, model: torch.nn.Module) -> DiscreteDiffusionPipeline:
        return DiscreteDiffusionPipeline(vqvae=vqvae, denoiser=model, scheduler=self.scheduler)

    def sampling_kwargs(self) -> dict:
        return {"num_inference_steps": min(self.args.num_inference_steps, len(self.scheduler))}

    def extra_results(self, eval_bits_per_token: float, layout: TokenLayout) -> dict:
        return {}  # no exact likelihood for this prior


PRIOR_KINDS = {"ar": AutoregressivePrior, "diffusion": DiscreteDiffusionPrior}
