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
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from hf_vqgen import PixelTransform, VQVAEModel, load_image_dataset, with_pixel_values
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
from hf_vqgen.training.arguments import (
    add_accelerate_arguments,
    add_optimization_arguments,
    check_training_arguments,
    recipe_parser,
)
from hf_vqgen.training.export import export_atomically, recover_interrupted_export
from hf_vqgen.training.loop import backward_and_step, out_of_time, resumed_batches
from hf_vqgen.training.losses import load_perceptual_network
from hf_vqgen.training.run_config import remember_run_settings
from hf_vqgen.training.run_lock import hold_output_dir
from hf_vqgen.utils import peak_rss_mib


logger = get_logger(__name__)
# the held-out metrics that go into the model card
CARD_METRICS = ("psnr", "ssim", "codebook_usage", "perplexity")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = recipe_parser(__doc__)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default=None, help="`fashion_mnist`, `emoji` or a Hub dataset id.")
    data.add_argument(
        "--train_data_dir",
        default=None,
        help="Local image folder, or shard folder with --streaming (overrides --dataset_name).",
    )
    data.add_argument("--image_column", default="image")
    data.add_argument("--eval_split", default="test", help="Split for validation grids and the final metrics.")
    data.add_argument("--resolution", type=int, default=28)
    data.add_argument("--num_channels", type=int, default=1, choices=(1, 3))
    data.add_argument("--resize_mode", default="resize", choices=("resize", "pad"))
    data.add_argument("--max_train_samples", type=int, default=None, help="Truncate the training split (debugging).")
    data.add_argument("--max_eval_samples", type=int, default=None, help="Truncate the evaluation split.")
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    data.add_argument(
        "--streaming", action="store_true", help="Stream the dataset (no epochs; --max_*_samples are read lazily)."
    )
    data.add_argument(
        "--shuffle_buffer_size", type=int, default=1000, help="--streaming: rows drawn at random from this many."
    )

    model = parser.add_argument_group("model")
    model.add_argument("--block_out_channels", type=int, nargs="+", default=[32, 64, 64])
    model.add_argument("--layers_per_block", type=int, default=1)
    model.add_argument("--latent_channels", type=int, default=64)
    model.add_argument("--norm_num_groups", type=int, default=32)
    model.add_argument("--no_mid_block_attention", action="store_true", help="Drop the mid-block self-attention.")
    model.add_argument("--quantizer", default="vq", choices=("vq", "fsq"),
                       help="vq: a learned codebook (the options below); fsq: finite scalar quantization.")  # fmt: skip
    model.add_argument("--fsq_levels", type=int, nargs="+", default=None,
                       help="FSQ values per code dimension (e.g. 8 8 8: 512 codes of dimension 3).")  # fmt: skip
    model.add_argument(
        "--num_vq_embeddings", type=int, default=None, help="Codebook size (default 256; FSQ: implied)."
    )
    model.add_argument("--vq_embed_dim", type=int, default=None, help="Code dimension (default: latent_channels).")
    model.add_argument("--codebook_update", default="ema", choices=("loss", "ema"))
    model.add_argument("--commitment_beta", type=float, default=0.25)
    model.add_argument("--ema_decay", type=float, default=0.99)
    model.add_argument("--kmeans_init", action="store_true")
    model.add_argument("--dead_code_threshold", type=float, default=0.0)
    model.add_argument("--use_cosine_codes", action="store_true")

    loss = parser.add_argument_group("loss")
    loss.add_argument("--reconstruction_loss", default="l1", choices=("l1", "l2"))
    loss.add_argument("--codebook_weight", type=float, default=1.0)
    loss.add_argument("--feature_matching_weight", type=float, default=0.0, help="Discriminator-feature perceptual.")
    loss.add_argument("--disc_weight", type=float, default=0.0, help="Adversarial weight (times the adaptive one).")
    loss.add_argument("--disc_start", type=int, default=0, help="Step from which the adversarial term is used.")
    loss.add_argument("--disc_base_channels", type=int, default=32)
    loss.add_argument("--disc_num_layers", type=int, default=2)
    loss.add_argument("--disc_learning_rate", type=float, default=None, help="Default: --learning_rate.")
    loss.add_argument("--lpips_model_path", default=None,
                      help="Perceptual loss network: a local TorchScript LPIPS file, or a metric classifier folder "
                           "(e.g. benchmarks/assets/emoji_shape_classifier); never downloaded.")  # fmt: skip
    loss.add_argument("--lpips_weight", type=float, default=0.0)

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", default="vqvae-model")
    train.add_argument("--max_train_minutes", type=float, default=None, help="Stop (and save) after this long.")
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.99)
    train.add_argument("--adam_weight_decay", type=float, default=0.0)
    add_optimization_arguments(train, max_train_steps=5000, learning_rate=1e-3)
    add_accelerate_arguments(train, checkpointing_steps=1000, validation_steps=500)
    args = parser.parse_args(argv)
    check_training_arguments(parser, args)
    if args.streaming and args.dataloader_num_workers:
        parser.error("--streaming reads in the main process (its position is saved with the checkpoint): "
                     "use --dataloader_num_workers 0")  # fmt: skip
    if args.shuffle_buffer_size < 0:
        parser.error("--shuffle_buffer_size must be >= 0")
    if bool(args.lpips_model_path) != (args.lpips_weight > 0):
        parser.error("--lpips_model_path and --lpips_weight > 0 go together (one without the other would be ignored)")
    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error(
            "pass the images to train on: --dataset_name (fashion_mnist, emoji, a Hub id) or --train_data_dir"
        )
    if args.quantizer == "fsq":
        if not args.fsq_levels:
            parser.error("--quantizer fsq needs --fsq_levels (e.g. 8 8 8)")
        implied = (math.prod(args.fsq_levels), len(args.fsq_levels))
        given = (args.num_vq_embeddings, args.vq_embed_dim)
        if any(value is not None and value != want for value, want in zip(given, implied)):
            parser.error(f"--fsq_levels {' '.join(map(str, args.fsq_levels))} imply --num_vq_embeddings {implied[0]} "
                         f"and --vq_embed_dim {implied[1]}; got {given[0]} and {given[1]} (drop them)")  # fmt: skip
        args.num_vq_embeddings, args.vq_embed_dim = implied
        vq_only = {"--codebook_update loss": args.codebook_update != "ema", "--kmeans_init": args.kmeans_init,
                   "--dead_code_threshold": args.dead_code_threshold > 0, "--use_cosine_codes": args.use_cosine_codes,
                   "--commitment_beta": args.commitment_beta != 0.25, "--ema_decay": args.ema_decay != 0.99}  # fmt: skip
        if any(vq_only.values()):
            parser.error(f"{', '.join(k for k, v in vq_only.items() if v)} only apply to --quantizer vq (FSQ has no "
                         "learned codebook)")  # fmt: skip
    elif args.fsq_levels:
        parser.error("--fsq_levels is for --quantizer fsq")
    args.num_vq_embeddings = args.num_vq_embeddings or 256
    if args.resolution % 2 ** (len(args.block_out_channels) - 1):
        parser.error(f"--resolution {args.resolution} is not divisible by 2**(len(--block_out_channels) - 1)")
    return args


def build_model(args: argparse.Namespace) -> VQVAEModel:
    num_blocks = len(args.block_out_channels)
    return VQVAEModel(
        in_channels=args.num_channels,
        out_channels=args.num_channels,
        down_block_types=("DownEncoderBlock2D",) * num_blocks,
        up_block_types=("UpDecoderBlock2D",) * num_blocks,
        block_out_channels=tuple(args.block_out_channels),
        layers_per_block=args.layers_per_block,
        latent_channels=args.latent_channels,
        sample_size=args.resolution,
        num_vq_embeddings=args.num_vq_embeddings,
        norm_num_groups=args.norm_num_groups,
        vq_embed_dim=args.vq_embed_dim,
        mid_block_add_attention=not args.no_mid_block_attention,
        codebook_update=args.codebook_update,
        commitment_beta=args.commitment_beta,
        ema_decay=args.ema_decay,
        kmeans_init=args.kmeans_init,
        dead_code_threshold=args.dead_code_threshold,
        use_cosine_codes=args.use_cosine_codes,
        quantizer_type=args.quantizer,
        fsq_levels=args.fsq_levels,
    )


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
    model = build_model(args)
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
