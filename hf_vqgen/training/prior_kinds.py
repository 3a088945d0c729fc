"""The kinds of prior `examples/train_prior.py` trains, one small class each: its token layout, its model, its
training batch and loss targets, the pipeline it ships in. The script picks one from `PRIOR_KINDS` by
`--prior_type` and never asks which kind it holds again; a new kind is a new class here and an entry in the table.
Kinds read a typed `PriorConfig`, not the script's arguments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import BertForMaskedLM, GPT2LMHeadModel

from ..pipelines import DiscreteDiffusionPipeline, VQGenPipeline
from ..schedulers import DiscreteDiffusionScheduler
from ..vocabulary import IGNORE_INDEX, TokenLayout
from .prior_batches import build_batch, build_diffusion_batch


@dataclass(frozen=True)
class PriorConfig:
    """What a prior kind needs to build its model and its training batches (`--n_layer`, ... of train_prior.py)."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1
    # discrete diffusion
    corruption: str = "absorbing"
    objective: str = "x0"
    schedule: str = "cosine"
    num_train_timesteps: int = 100
    extra_corruption: float = 0.1
    loss_on: str | None = None  # default: all positions for uniform corruption, else the corrupted ones
    num_inference_steps: int = 16

    def __post_init__(self):
        if self.loss_on is None:
            object.__setattr__(self, "loss_on", "all" if self.corruption == "uniform" else "corrupted")

    @classmethod
    def from_namespace(cls, namespace) -> PriorConfig:
        """The fields of `namespace` (e.g. the script's arguments) that this config has; the rest is ignored."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in vars(namespace).items() if name in names})


class AutoregressivePrior:
    """A stock `GPT2LMHeadModel` over [BOS, class?, codes], next-token cross entropy on the code positions; ships as a
    `VQGenPipeline`. Its held-out loss is an exact likelihood (bits per token and per image)."""

    # its model card: the template in model_cards/, the name and the Hub tags
    card = {"template": "ar_pipeline.md", "kind_name": "autoregressive pipeline", "tags": []}
    own_flags = ()  # flags only this kind reads (the card leaves out the other kinds')

    scheduler = None

    def __init__(self, config: PriorConfig):
        self.config = config

    def layout(self, vqvae, num_classes: int, class_factors: tuple[int, ...] = ()) -> TokenLayout:
        return TokenLayout.for_tokenizer(vqvae, num_classes=num_classes, class_factors=class_factors)

    def build_model(self, layout: TokenLayout) -> torch.nn.Module:
        args = self.config
        return GPT2LMHeadModel(layout.gpt2_config(args.n_layer, args.n_head, args.n_embd, args.dropout))

    def load_model(self, pipeline_dir: Path) -> torch.nn.Module:
        """The prior of a saved `VQGenPipeline` folder, to continue training it with this run's `--dropout`."""
        rate = self.config.dropout
        return GPT2LMHeadModel.from_pretrained(
            pipeline_dir / "prior", dtype=torch.float32, resid_pdrop=rate, embd_pdrop=rate, attn_pdrop=rate
        )

    def input_length(self, layout: TokenLayout) -> int:
        """Tokens in one training input (prefix and codes), for tokens/s figures."""
        return layout.sequence_length

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

    card = {
        "template": "diffusion_pipeline.md",
        "kind_name": "discrete-diffusion pipeline",
        "tags": ["discrete-diffusion"],
    }
    own_flags = ("corruption", "objective", "schedule", "num_train_timesteps", "extra_corruption", "loss_on",
                 "num_inference_steps")  # fmt: skip

    def __init__(self, config: PriorConfig):
        self.config = config
        self.scheduler = None  # built with the model, once the layout is known

    def layout(self, vqvae, num_classes: int, class_factors: tuple[int, ...] = ()) -> TokenLayout:
        return TokenLayout.for_tokenizer(
            vqvae,
            num_classes=num_classes,
            class_factors=class_factors,
            use_mask_token=self.config.corruption != "uniform",
            num_noise_levels=self.config.num_train_timesteps if self.config.objective == "x0" else 0,
        )

    def build_model(self, layout: TokenLayout) -> torch.nn.Module:
        args = self.config
        self.scheduler = DiscreteDiffusionScheduler(
            layout.num_codes, layout.mask_token_id, args.num_train_timesteps, args.corruption, args.schedule
        )
        return BertForMaskedLM(layout.bert_config(args.n_layer, args.n_head, args.n_embd, args.dropout))

    def load_model(self, pipeline_dir: Path) -> torch.nn.Module:
        """The denoiser (and scheduler) of a saved `DiscreteDiffusionPipeline` folder, to continue training it with
        this run's `--dropout`."""
        self.scheduler = DiscreteDiffusionScheduler.from_pretrained(pipeline_dir / "scheduler")
        rate = self.config.dropout
        return BertForMaskedLM.from_pretrained(
            pipeline_dir / "denoiser", dtype=torch.float32, hidden_dropout_prob=rate, attention_probs_dropout_prob=rate
        )

    def input_length(self, layout: TokenLayout) -> int:
        return layout.denoiser_prefix_length + layout.num_tokens

    def inputs(self, batch: dict, layout: TokenLayout, class_dropout: float, generator=None):
        args = self.config
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
        return {"num_inference_steps": min(self.config.num_inference_steps, len(self.scheduler))}

    def extra_results(self, eval_bits_per_token: float, layout: TokenLayout) -> dict:
        return {}  # no exact likelihood for this prior


PRIOR_KINDS = {"ar": AutoregressivePrior, "diffusion": DiscreteDiffusionPrior}
