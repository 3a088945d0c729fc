#!/usr/bin/env python
"""Train a `VQVAEModel` image tokenizer with Accelerate.

    accelerate launch examples/train_vqvae.py --dataset_name fashion_mnist --output_dir vqvae-fashion-mnist

See the README for the Fashion-MNIST recipe. The run ends with `save_pretrained(output_dir)` (safetensors), a grid of
test originals vs reconstructions and `eval_results.json` (test-set PSNR and codebook usage).

With `--streaming` the images are streamed (a Hub id, or a local folder of Parquet / WebDataset `.tar` shards: see
`hf_vqgen.data.streaming`), each process reading its own shards, endlessly (`--max_train_steps` bounds the run) and
through a `--shuffle_buffer_size` buffer; a checkpoint holds each process's stream position, so
`--resume_from_checkpoint` continues without re-reading a row.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from hf_vqgen import PixelTransform, load_image_dataset, with_pixel_values
from hf_vqgen.data import collate_pixel_values
from hf_vqgen.data.streaming import (
    StreamingImages,
    StreamingLoader,
    collate_streaming,
    load_streaming_image_dataset,
    split_by_process,
)
from hf_vqgen.evaluation import evaluate_tokenizer
from hf_vqgen.image_utils import reconstruction_grid
from hf_vqgen.model_cards import model_facts, training_context, write_model_card
from hf_vqgen.models import PatchDiscriminator
from hf_vqgen.publishing import check_hub_access, push_or_explain
from hf_vqgen.training import (
    VQGANLoss,
    VQGANLossConfig,
    init_trackers,
    load_checkpoint,
    save_checkpoint,
)
from hf_vqgen.training.accelerator import build_accelerator, loader_generator
from hf_vqgen.training.export import export_atomically, recover_interrupted_export
from hf_vqgen.training.loop import backward_and_step, out_of_time, resumed_batches
from hf_vqgen.training.losses import load_perceptual_network
from hf_vqgen.training.run_config import remember_run_settings
from hf_vqgen.training.run_lock import hold_output_dir
from hf_vqgen.training.script_arguments import build_tokenizer, parse_tokenizer_arguments
from hf_vqgen.utils import peak_rss_mib


logger = get_logger(__name__)
# the held-out metrics that go into the model card
CARD_METRICS = ("psnr", "ssim", "codebook_usage", "perplexity")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_tokenizer_arguments(argv, __doc__)


def build_streaming_dataloaders(args: argparse.Namespace):
    """This process's shards of the training split, batched endlessly (`StreamingLoader`, to register for
    checkpointing); the evaluation split streamed whole (or its first --max_eval_samples) by every process."""
    from accelerate import PartialState

    process = PartialState()
    source = args.train_data_dir or args.dataset_name
    transform = PixelTransform(args.resolution, args.num_channels, args.resize_mode)
    train = load_streaming_image_dataset(source, "train", args.image_column, label_column=None)
    train = split_by_process(train, process.process_index, process.num_processes)
    if args.max_train_samples is not None:  # this process's share of the first max_train_samples
        share, extra = divmod(args.max_train_samples, process.num_processes)
        train = train.take(share + int(process.process_index < extra))
    images = StreamingImages(train, transform, args.shuffle_buffer_size, seed=(args.seed, process.process_index))
    evaluation = load_streaming_image_dataset(source, args.eval_split, args.image_column, label_column=None)
    if args.max_eval_samples is not None:
        evaluation = evaluation.take(args.max_eval_samples)
    eval_loader = torch.utils.data.DataLoader(
        StreamingImages(evaluation, transform), batch_size=args.eval_batch_size, collate_fn=collate_streaming
    )
    return StreamingLoader(images, args.train_batch_size, process.device), eval_loader


def build_dataloaders(args: argparse.Namespace):
    if args.streaming:
        return build_streaming_dataloaders(args)
    source = args.train_data_dir or args.dataset_name
    transform = PixelTransform(args.resolution, args.num_channels, args.resize_mode)
    train = load_image_dataset(source, split="train", image_column=args.image_column)
    evaluation = load_image_dataset(source, split=args.eval_split, image_column=args.image_column)
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    loader_kwargs = {"collate_fn": collate_pixel_values, "num_workers": args.dataloader_num_workers}
    train_loader = torch.utils.data.DataLoader(
        with_pixel_values(train, transform), batch_size=args.train_batch_size, shuffle=True, drop_last=True,
        generator=loader_generator(args), **loader_kwargs,
    )  # fmt: skip
    eval_loader = torch.utils.data.DataLoader(
        with_pixel_values(evaluation, transform), batch_size=args.eval_batch_size, **loader_kwargs
    )
    if len(train_loader) == 0:
        raise ValueError(f"The training split has fewer images than --train_batch_size={args.train_batch_size}.")
    return train_loader, eval_loader


@dataclass
class Components:
    model: torch.nn.Module
    discriminator: torch.nn.Module | None
    criterion: VQGANLoss
    optimizers: tuple  # (optimizer, disc_optimizer or None, lr_scheduler)
    train_loader: torch.utils.data.DataLoader
    eval_loader: torch.utils.data.DataLoader


def save_validation_grid(model, pixel_values: torch.Tensor, path: Path) -> None:
    was_training = model.training
    model.eval()
    reconstructions = model.decode_ids(model.encode_to_ids(pixel_values))
    model.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    reconstruction_grid(pixel_values.cpu(), reconstructions.cpu()).save(path)


class _frozen:  # noqa: N801 - a context manager
    """`requires_grad_(False)` on a module's parameters for the block (nothing for None), restored after."""

    def __init__(self, module: torch.nn.Module | None):
        self.parameters = [p for p in module.parameters() if p.requires_grad] if module is not None else []

    def __enter__(self):
        for parameter in self.parameters:
            parameter.requires_grad_(False)

    def __exit__(self, *exc) -> None:
        for parameter in self.parameters:
            parameter.requires_grad_(True)


def training_step(batch, parts: Components, accelerator: Accelerator, args: argparse.Namespace, step: int) -> dict:
    """One (accumulated) optimisation step of the tokenizer and, when it is in use, of the discriminator."""
    model, discriminator, criterion = parts.model, parts.discriminator, parts.criterion
    optimizer, disc_optimizer, lr_scheduler = parts.optimizers
    real = batch["pixel_values"]
    with accelerator.accumulate(model, discriminator):
        output = model(real)
        last_layer = accelerator.unwrap_model(model).decoder.conv_out.weight
        # D is frozen for the generator's backward: its gradients then hold only its own loss, accumulated over every
        # micro-batch (zeroing them here instead would keep only the last one: Accelerate's zero_grad acts on the
        # syncing step only)
        frozen = _frozen(discriminator)
        with frozen:
            loss, logs = criterion.generator_loss(
                real, output.sample, output.commit_loss, discriminator, step, last_layer
            )
            mean_loss = backward_and_step(
                accelerator, loss, model, optimizer, lr_scheduler, args.max_grad_norm, step + 1
            )

        if discriminator is not None and criterion.config.discriminator_trains_at(step):
            disc_loss, disc_logs = criterion.discriminator_loss(real, output.sample, discriminator)
            accelerator.backward(disc_loss)
            disc_optimizer.step()
            disc_optimizer.zero_grad(set_to_none=True)
            logs.update(disc_logs)
    logs.update(loss=mean_loss, perplexity=output.perplexity, codebook_usage=output.codebook_usage)
    logs["lr"] = lr_scheduler.get_last_lr()[0]
    return {name: float(value) for name, value in logs.items()}


def finish(accelerator, model, eval_loader, args, step: int, elapsed: float) -> dict:
    """Evaluate, then export the model, its test-set figures, a reconstruction grid and its card into
    `--output_dir` in one atomic step (main process)."""
    model = accelerator.unwrap_model(model).eval()
    results = evaluate_tokenizer(model, eval_loader, accelerator.device)
    results.update(train_steps=step, train_minutes=elapsed / 60, eval_split=args.eval_split)
    results["peak_rss_mib"] = peak_rss_mib()  # this process's high-water mark: training, evaluation included
    pixel_values = next(iter(eval_loader))["pixel_values"][:32].to(accelerator.device)
    card_metrics = {key: results[key] for key in CARD_METRICS if key in results}
    evaluator = f"examples/train_vqvae.py on the {args.eval_split} split ({results['num_images']} images)"
    context = training_context("tokenizer", "train_vqvae.py", args, model_facts(model), card_metrics, evaluator)

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        (folder / "eval_results.json").write_text(json.dumps(results, indent=2))
        save_validation_grid(model, pixel_values, folder / "reconstructions.png")
        write_model_card(folder, context)

    export_atomically(args.output_dir, write)
    return results


def build_components(args: argparse.Namespace, accelerator: Accelerator) -> Components:
    """Data, models, losses and optimisers, prepared by Accelerate."""
    train_loader, eval_loader = build_dataloaders(args)
    if args.streaming:  # its stream position goes into every checkpoint (`accelerator.prepare` leaves it as it is)
        accelerator.register_for_checkpointing(train_loader)
    set_seed(args.seed)  # the same initial weights whatever the data loading before drew from the RNG
    model = build_tokenizer(args)
    criterion_config = VQGANLossConfig(
        reconstruction=args.reconstruction_loss, codebook_weight=args.codebook_weight,
        feature_matching_weight=args.feature_matching_weight, lpips_weight=args.lpips_weight,
        disc_weight=args.disc_weight, disc_start=args.disc_start,
    )  # fmt: skip
    lpips = load_perceptual_network(args.lpips_model_path).to(accelerator.device) if args.lpips_model_path else None
    adam = {"betas": (args.adam_beta1, args.adam_beta2), "weight_decay": args.adam_weight_decay}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate, **adam)
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )  # fmt: skip
    model, optimizer, train_loader, lr_scheduler = accelerator.prepare(model, optimizer, train_loader, lr_scheduler)
    discriminator = disc_optimizer = None
    if criterion_config.uses_discriminator:
        discriminator = PatchDiscriminator(args.num_channels, args.disc_base_channels, args.disc_num_layers)
        disc_lr = args.disc_learning_rate or args.learning_rate
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=disc_lr, **adam)
        discriminator, disc_optimizer = accelerator.prepare(discriminator, disc_optimizer)
    return Components(
        model, discriminator, VQGANLoss(criterion_config, lpips=lpips), (optimizer, disc_optimizer, lr_scheduler),
        train_loader, eval_loader,
    )  # fmt: skip


def train(args: argparse.Namespace, accelerator: Accelerator, parts: Components, global_step: int) -> int:
    """The training loop, from `global_step` (resumed runs skip the batches already seen this epoch)."""
    output_dir = Path(args.output_dir)
    validation_batch = next(iter(parts.eval_loader))["pixel_values"][:16].to(accelerator.device)
    progress = tqdm(
        total=args.max_train_steps, initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    start = time.monotonic()
    parts.model.train()
    while global_step < args.max_train_steps and not out_of_time(accelerator, start, args.max_train_minutes):
        batches = parts.train_loader  # --streaming: endless, resumed from the checkpoint's stream position
        if not args.streaming:
            batches = resumed_batches(accelerator, parts.train_loader, global_step, args.gradient_accumulation_steps)
        for batch in batches:
            logs = training_step(batch, parts, accelerator, args, global_step)
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{logs['loss']:.4f}", usage=f"{logs['codebook_usage']:.2f}")
            accelerator.log(logs, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit)
            if accelerator.is_main_process and global_step % args.validation_steps == 0:
                grid_path = output_dir / "validation" / f"step-{global_step}.png"
                save_validation_grid(accelerator.unwrap_model(parts.model), validation_batch, grid_path)
            if global_step >= args.max_train_steps or out_of_time(accelerator, start, args.max_train_minutes):
                break
    progress.close()
    return global_step


def main(args: argparse.Namespace) -> dict | None:
    recover_interrupted_export(args.output_dir)  # before resuming looks for checkpoints there
    accelerator = build_accelerator(args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    if args.push_to_hub and accelerator.is_main_process:
        check_hub_access(args.hub_model_id)  # before training, not after it
    with hold_output_dir(accelerator.is_main_process, args.output_dir):  # one run per folder
        return run(args, accelerator)


def run(args: argparse.Namespace, accelerator: Accelerator) -> dict | None:
    parts = build_components(args, accelerator)
    init_trackers(accelerator, "train_vqvae", args)
    remember_run_settings(args, accelerator.is_main_process)
    start_step = load_checkpoint(accelerator, args.output_dir, args.resume_from_checkpoint)

    start = time.monotonic()
    global_step = train(args, accelerator, parts, start_step)
    accelerator.wait_for_everyone()
    results = None
    if accelerator.is_main_process:
        results = finish(accelerator, parts.model, parts.eval_loader, args, global_step, time.monotonic() - start)
        logger.info(f"Test-set results: {json.dumps(results)}")
        print(json.dumps(results, indent=2))
        if args.push_to_hub:
            push_or_explain(args.output_dir, args.hub_model_id)
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return results


if __name__ == "__main__":
    main(parse_args())
