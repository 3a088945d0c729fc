#!/usr/bin/env python
"""Train a prior over VQ-VAE token grids with Accelerate and save the whole pipeline.

    accelerate launch examples/train_prior.py --prior_type ar --vqvae_name_or_path outputs/vqvae \
        --tokens_dir outputs/tokens --output_dir outputs/ar-pipeline
    accelerate launch examples/train_prior.py --prior_type diffusion --corruption absorbing --objective x0 \
        --vqvae_name_or_path outputs/vqvae --tokens_dir outputs/tokens --output_dir outputs/diffusion-pipeline

Without `--tokens_dir` the image dataset (`--dataset_name`) is encoded once with the tokenizer and cached in
`output_dir/tokens`. `--prior_type ar` trains a stock `GPT2LMHeadModel` with next-token cross entropy on the code
positions and saves a `VQGenPipeline`; `--prior_type diffusion` trains a stock `BertForMaskedLM` denoiser (see
`hf_vqgen.training.priors.build_diffusion_batch` for the two objectives) and saves a `DiscreteDiffusionPipeline`.
Both end with `eval_results.json` (held-out loss in bits per token).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm
from transformers import BertForMaskedLM, GPT2LMHeadModel

from hf_vqgen import (
    DiscreteDiffusionPipeline,
    DiscreteDiffusionScheduler,
    TokenLayout,
    VQGenPipeline,
    VQVAEModel,
    load_image_dataset,
)
from hf_vqgen.data import encode_image_dataset, load_token_dataset, save_token_dataset, tokenizer_identity
from hf_vqgen.hub import push_folder_to_hub
from hf_vqgen.model_cards import model_facts, training_context, write_model_card
from hf_vqgen.training import init_trackers, load_checkpoint, save_checkpoint
from hf_vqgen.training.accelerator import build_accelerator, loader_generator
from hf_vqgen.training.arguments import (
    add_accelerate_arguments,
    add_optimization_arguments,
    check_training_arguments,
    recipe_parser,
)
from hf_vqgen.training.images import image_grid
from hf_vqgen.training.loop import backward_and_step, resumed_batches
from hf_vqgen.training.priors import bits_per_token, build_batch, build_diffusion_batch, weight_decay_groups


logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = recipe_parser(__doc__)
    parser.add_argument("--prior_type", default="ar", choices=("ar", "diffusion"))
    data = parser.add_argument_group("data")
    data.add_argument("--vqvae_name_or_path", required=True)
    data.add_argument("--tokens_dir", default=None, help="Token dataset from examples/encode_dataset.py.")
    data.add_argument("--dataset_name", default="fashion_mnist", help="Image dataset, when --tokens_dir is not given.")
    data.add_argument("--eval_split", default="test")
    data.add_argument("--unconditional", action="store_true", help="Ignore class labels.")
    data.add_argument("--max_train_samples", type=int, default=None)
    model = parser.add_argument_group("model")
    model.add_argument("--n_layer", type=int, default=4)
    model.add_argument("--n_head", type=int, default=4)
    model.add_argument("--n_embd", type=int, default=128)
    model.add_argument("--dropout", type=float, default=0.1)
    model.add_argument("--class_dropout", type=float, default=0.1, help="Label -> null class rate, for CFG.")
    diffusion = parser.add_argument_group("discrete diffusion (--prior_type diffusion)")
    diffusion.add_argument("--corruption", default="absorbing", choices=("uniform", "absorbing", "mask_and_replace"))
    diffusion.add_argument("--objective", default="x0", choices=("original", "x0"),
                           help="original: g(x_b) -> x_a; x0: predict the clean grid from x_t.")  # fmt: skip
    diffusion.add_argument("--schedule", default="cosine", choices=("linear", "cosine"))
    diffusion.add_argument("--num_train_timesteps", type=int, default=100)
    diffusion.add_argument("--extra_corruption", type=float, default=0.1, help="x_a -> x_b rate (original).")
    diffusion.add_argument("--loss_on", default=None, choices=("corrupted", "all"),
                           help="x0 loss positions; default: all for uniform corruption, else corrupted.")  # fmt: skip
    diffusion.add_argument("--num_inference_steps", type=int, default=16, help="For validation samples.")
    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="prior-pipeline")
    train.add_argument("--weight_decay", type=float, default=0.1)
    train.add_argument("--use_ema", action="store_true")
    train.add_argument("--ema_decay", type=float, default=0.999)
    train.add_argument("--num_validation_images", type=int, default=16)
    add_optimization_arguments(train, max_train_steps=3000, learning_rate=1e-3)
    add_accelerate_arguments(train, checkpointing_steps=1000, validation_steps=500)
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
    if not 0 <= args.class_dropout < 1:
        parser.error("--class_dropout must be in [0, 1)")
    if not 0 <= args.extra_corruption < 1:
        parser.error("--extra_corruption must be in [0, 1)")
    if args.num_train_timesteps < 1 or args.num_inference_steps < 1:
        parser.error("--num_train_timesteps and --num_inference_steps must be >= 1")
    if args.loss_on is None:
        args.loss_on = "all" if args.corruption == "uniform" else "corrupted"
    return args


def load_tokens(args, vqvae: VQVAEModel, accelerator: Accelerator):
    """(train, eval) token datasets, checked against the tokenizer; encoded from images once when needed."""
    tokens_dir = args.tokens_dir or str(Path(args.output_dir) / "tokens")
    if args.tokens_dir is None and not Path(tokens_dir).is_dir():
        splits = {}
        for split in ("train", args.eval_split):
            splits[split] = encode_image_dataset(
                vqvae, load_image_dataset(args.dataset_name, split=split), accelerator
            )
        if accelerator.is_main_process:
            import datasets

            save_token_dataset(datasets.DatasetDict(splits), tokens_dir, tokenizer_identity(vqvae))
        accelerator.wait_for_everyone()
    tokens, _ = load_token_dataset(tokens_dir, vqvae)
    train = tokens["train"]
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    return train.with_format("torch"), tokens[args.eval_split].with_format("torch")


def count_classes(tokens) -> int:
    """Classes of a token dataset's `label` column (its ClassLabel names, else max + 1); 0 without labels."""
    if "label" not in tokens.column_names:
        return 0
    feature = tokens.features["label"]
    return feature.num_classes if hasattr(feature, "num_classes") else int(max(tokens.with_format(None)["label"])) + 1


def build_layout(args, vqvae, num_classes: int) -> TokenLayout:
    if args.prior_type == "ar":
        return TokenLayout.for_tokenizer(vqvae, num_classes=num_classes)
    return TokenLayout.for_tokenizer(
        vqvae,
        num_classes=num_classes,
        use_mask_token=args.corruption != "uniform",
        num_noise_levels=args.num_train_timesteps if args.objective == "x0" else 0,
    )


def build_prior(args, layout: TokenLayout):
    """(prior, scheduler): a GPT-2, or a BERT denoiser with its `DiscreteDiffusionScheduler`."""
    if args.prior_type == "ar":
        return GPT2LMHeadModel(layout.gpt2_config(args.n_layer, args.n_head, args.n_embd, args.dropout)), None
    denoiser = BertForMaskedLM(layout.bert_config(args.n_layer, args.n_head, args.n_embd, args.dropout))
    scheduler = DiscreteDiffusionScheduler(
        layout.num_codes, layout.mask_token_id, args.num_train_timesteps, args.corruption, args.schedule
    )
    return denoiser, scheduler


def prior_inputs(args, batch, layout, scheduler, class_dropout, generator=None):
    """(input_ids, labels) of one batch for the prior's loss."""
    if scheduler is None:
        return build_batch(batch, layout, class_dropout)
    return build_diffusion_batch(
        batch, layout, scheduler, args.objective, class_dropout, args.extra_corruption, args.loss_on, generator
    )


def build_pipeline(vqvae, prior, scheduler):
    if scheduler is None:
        return VQGenPipeline(vqvae=vqvae, prior=prior)
    return DiscreteDiffusionPipeline(vqvae=vqvae, denoiser=prior, scheduler=scheduler)


@torch.no_grad()
def evaluate_bits(args, prior, loader, layout, scheduler, accelerator) -> float:
    """Held-out loss in bits per target token (for diffusion: of its training objective, with fixed noise)."""
    prior.eval()
    generator = torch.Generator().manual_seed(args.seed)
    total_nats, total_tokens = 0.0, 0
    for batch in loader:
        input_ids, labels = prior_inputs(args, batch, layout, scheduler, 0.0, generator)
        loss = prior(input_ids=input_ids, labels=labels).loss.float()
        shifted = labels[:, 1:] if scheduler is None else labels  # GPT-2 shifts its labels by one
        count = torch.tensor(float((shifted != -100).sum()), device=loss.device)
        total_nats += float(accelerator.reduce(loss * count, reduction="sum"))
        total_tokens += int(accelerator.reduce(count, reduction="sum"))
    prior.train()
    return bits_per_token(total_nats / max(total_tokens, 1))


def save_samples(vqvae, prior, scheduler, layout: TokenLayout, args, path: Path) -> None:
    was_training = prior.training
    pipeline = build_pipeline(vqvae, prior.eval(), scheduler)
    pipeline.set_progress_bar_config(disable=True)
    count = args.num_validation_images
    labels = torch.arange(count) % layout.num_classes if layout.num_classes else None
    kwargs = {} if scheduler is None else {"num_inference_steps": min(args.num_inference_steps, len(scheduler))}
    samples = pipeline(
        count, class_labels=labels, generator=torch.Generator().manual_seed(0), output_type="pt", **kwargs
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(samples.images * 2 - 1, columns=min(8, count)).save(path)
    prior.train(was_training)


def main(args: argparse.Namespace) -> dict | None:
    accelerator = build_accelerator(args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    vqvae = VQVAEModel.from_pretrained(args.vqvae_name_or_path).to(accelerator.device).eval()
    train_tokens, eval_tokens = load_tokens(args, vqvae, accelerator)
    num_classes = 0 if args.unconditional else count_classes(train_tokens)
    layout = build_layout(args, vqvae, num_classes)
    set_seed(args.seed)  # the same initial weights whatever the data loading before drew from the RNG
    prior, scheduler = build_prior(args, layout)
    optimizer = torch.optim.AdamW(
        weight_decay_groups(prior, args.weight_decay), lr=args.learning_rate, betas=(0.9, 0.95)
    )
    train_loader = torch.utils.data.DataLoader(
        train_tokens, batch_size=args.train_batch_size, shuffle=True, drop_last=True, generator=loader_generator(args)
    )
    eval_loader = torch.utils.data.DataLoader(eval_tokens, batch_size=args.eval_batch_size)
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )  # fmt: skip
    prior, optimizer, train_loader, eval_loader, lr_scheduler = accelerator.prepare(
        prior, optimizer, train_loader, eval_loader, lr_scheduler
    )
    ema = None
    if args.use_ema:
        ema = EMAModel(accelerator.unwrap_model(prior).parameters(), decay=args.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    if accelerator.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    init_trackers(accelerator, "train_prior", args)
    global_step = load_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint)

    start = time.monotonic()
    global_step = train(
        args, accelerator, (prior, optimizer, lr_scheduler, ema), train_loader, (layout, scheduler), global_step,
        vqvae, eval_loader,
    )  # fmt: skip
    train_minutes = (time.monotonic() - start) / 60
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(prior)
    if ema is not None:
        ema.copy_to(unwrapped.parameters())  # ship the averaged weights
    results = {
        "prior_type": args.prior_type,
        "eval_bits_per_token": evaluate_bits(args, prior, eval_loader, layout, scheduler, accelerator),
        "train_steps": global_step,
        "train_minutes": train_minutes,
    }
    if scheduler is None:  # an exact likelihood only for the autoregressive prior
        results["eval_bits_per_image"] = results["eval_bits_per_token"] * layout.num_tokens
    if accelerator.is_main_process:
        build_pipeline(vqvae, unwrapped.eval(), scheduler).save_pretrained(args.output_dir)
        (Path(args.output_dir) / "eval_results.json").write_text(json.dumps(results, indent=2))
        save_samples(vqvae, unwrapped, scheduler, layout, args, Path(args.output_dir) / "samples.png")
        card_metrics = {key: value for key, value in results.items() if key.startswith("eval_")}
        evaluator = f"examples/train_prior.py, held-out loss on the {args.eval_split} split"
        facts = model_facts(vqvae, layout, scheduler)
        write_model_card(
            args.output_dir, training_context(args.prior_type, "train_prior.py", args, facts, card_metrics, evaluator)
        )
        if args.push_to_hub:
            push_folder_to_hub(args.output_dir, args.hub_model_id)
        print(json.dumps(results, indent=2))
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return results if accelerator.is_main_process else None


def train(args, accelerator, state, train_loader, token_process, global_step, vqvae, eval_loader) -> int:
    prior, optimizer, lr_scheduler, ema = state
    layout, scheduler = token_process
    progress = tqdm(
        total=args.max_train_steps, initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    prior.train()
    while global_step < args.max_train_steps:
        for batch in resumed_batches(accelerator, train_loader, global_step, args.gradient_accumulation_steps):
            with accelerator.accumulate(prior):
                input_ids, labels = prior_inputs(args, batch, layout, scheduler, args.class_dropout)
                loss = prior(input_ids=input_ids, labels=labels).loss
                mean_loss = backward_and_step(
                    accelerator, loss, prior, optimizer, lr_scheduler, args.max_grad_norm, global_step + 1
                )
            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(accelerator.unwrap_model(prior).parameters())
            global_step += 1
            progress.update(1)
            logs = {
                "loss": mean_loss,
                "bits_per_token": bits_per_token(mean_loss),
                "lr": lr_scheduler.get_last_lr()[0],
            }
            progress.set_postfix(bits=f"{logs['bits_per_token']:.3f}")
            accelerator.log(logs, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            if global_step % args.validation_steps == 0:
                eval_bits = evaluate_bits(args, prior, eval_loader, layout, scheduler, accelerator)
                accelerator.log({"eval_bits_per_token": eval_bits}, step=global_step)
                if accelerator.is_main_process:
                    path = Path(args.output_dir) / "validation" / f"step-{global_step}.png"
                    save_samples(vqvae, accelerator.unwrap_model(prior), scheduler, layout, args, path)
            if global_step >= args.max_train_steps:
                break
    progress.close()
    return global_step


if __name__ == "__main__":
    main(parse_args())
