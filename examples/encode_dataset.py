#!/usr/bin/env python
"""Encode an image dataset into token grids with a trained tokenizer.

    accelerate launch examples/encode_dataset.py --vqvae_name_or_path outputs/vqvae --output_dir outputs/tokens

Writes a `datasets.DatasetDict` (one entry per split) with `token_ids` (the h*w ids in raster order, int16) and
`label` where the source has one, plus the tokenizer's identity (`hf_vqgen_tokenizer.json`). Batched, no grad,
split across Accelerate processes (the main process writes); `--push_to_hub` uploads it as a dataset repo.

With `--streaming` the images are streamed (a Hub id, or a local folder of Parquet / WebDataset `.tar` shards: see
`hf_vqgen.data.streaming`), each process reads its own shards and writes Parquet token shards as it goes
(`<output_dir>/<split>/tokens-<rank>-<part>.parquet`, see `hf_vqgen.data.token_shards`), so neither the pixels nor all the
tokens are ever in memory; at the end the main process assembles them into the same token dataset (rows ordered by
process, then shard, not by source row: pass `--id_column` to trace them). `--resume` continues a killed run.

    accelerate launch examples/encode_dataset.py --vqvae_name_or_path outputs/vqvae --output_dir outputs/tokens \\
        --streaming --train_data_dir shards/ --id_column __key__ --image_column png --label_columns cls
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from huggingface_hub import HfApi
from PIL import ImageOps
from tqdm.auto import tqdm

from hf_vqgen import PixelTransform, VQVAEModel, load_image_dataset
from hf_vqgen.data import TOKENIZER_IDENTITY_FILE, encode_image_dataset, save_token_dataset, tokenizer_identity
from hf_vqgen.data.streaming import (
    StreamingImages,
    collate_streaming,
    load_streaming_image_dataset,
    split_by_process,
    token_features,
)
from hf_vqgen.data.token_shards import TokenShardWriter, assemble_token_dataset, clear_token_shards, wait_for_files
from hf_vqgen.model_cards import recorded_data_source
from hf_vqgen.utils import portable_path


logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vqvae_name_or_path", required=True)
    parser.add_argument("--dataset_name", default=None,
                        help="Default: the data the tokenizer was trained on, as its card records.")  # fmt: skip
    parser.add_argument("--train_data_dir", default=None, help="Local image folder (overrides --dataset_name).")
    parser.add_argument("--image_column", default="image")
    parser.add_argument(
        "--label_columns",
        nargs="+",
        default=["label"],
        help="Class label column(s); several (e.g. `label style` for emoji) become one label over their combinations.",
    )
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument(
        "--hflip_train",
        action="store_true",
        help="Also encode a mirrored copy of every train image (data for the prior: opt-in, since a mirror changes "
        "what some images mean, e.g. text, arrows, flags). Held-out splits are never mirrored.",
    )
    parser.add_argument("--resize_mode", default="resize", choices=("resize", "pad"))
    parser.add_argument(
        "--max_samples", type=int, default=None, help="Truncate each split (debugging; with --streaming, in all)."
    )
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_dataset_id", default=None)
    stream = parser.add_argument_group("streaming (datasets larger than memory or disk)")
    stream.add_argument("--streaming", action="store_true", help="Stream the images; write token shards as it goes.")
    stream.add_argument(
        "--rows_per_shard", type=int, default=50_000, help="Token rows per Parquet part (--streaming)."
    )
    stream.add_argument("--id_column", default=None, help="Source column copied into the tokens (e.g. __key__).")
    stream.add_argument("--resume", action="store_true", help="Continue a killed --streaming run in --output_dir.")
    args = parser.parse_args(argv)
    if args.streaming and len(args.label_columns) > 1:
        parser.error("--streaming takes one --label_columns column")
    if args.hflip_train and args.streaming:
        parser.error("--hflip_train is for in-memory encoding (not --streaming)")
    if args.hflip_train and "train" not in args.splits:
        parser.error("--hflip_train mirrors the train split: add it to --splits")
    if (args.resume or args.id_column) and not args.streaming:
        parser.error("--resume and --id_column need --streaming")
    if args.rows_per_shard < 1:
        parser.error("--rows_per_shard must be >= 1")
    if args.batch_size < 1:
        parser.error("--batch_size must be >= 1")
    if args.push_to_hub and not args.hub_dataset_id:
        parser.error("--push_to_hub needs --hub_dataset_id")
    return args


def main(args: argparse.Namespace) -> datasets.DatasetDict | None:
    accelerator = Accelerator()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    vqvae = VQVAEModel.from_pretrained(args.vqvae_name_or_path).to(accelerator.device).eval()
    if vqvae.config.num_vq_embeddings > 2**15:
        raise ValueError("Codebooks of more than 32768 codes do not fit the int16 `token_ids` column.")
    if args.train_data_dir is None and args.dataset_name is None:  # the images the tokenizer recorded
        recorded = recorded_data_source(args.vqvae_name_or_path)
        if recorded is None:
            raise ValueError(
                f"--vqvae_name_or_path {args.vqvae_name_or_path} records no training data: pass --dataset_name or "
                "--train_data_dir (the images to encode)."
            )
        args.dataset_name = recorded
    if args.streaming:
        return encode_streaming(args, accelerator, vqvae)
    splits = {}
    for split in args.splits:
        images = load_image_dataset(
            args.train_data_dir or args.dataset_name,
            split=split,
            image_column=args.image_column,
            label_column=args.label_columns,
        )
        if args.max_samples is not None:
            images = images.select(range(min(args.max_samples, len(images))))
        logger.info("Encoding %s/%s: %d images.", args.train_data_dir or args.dataset_name, split, len(images))
        splits[split] = encode_image_dataset(vqvae, images, accelerator, args.batch_size, args.resize_mode)
        if split == "train" and args.hflip_train:
            mirrored = images.map(lambda row: {"image": ImageOps.mirror(row["image"])}, desc="Mirroring")
            flipped = encode_image_dataset(vqvae, mirrored, accelerator, args.batch_size, args.resize_mode)
            logger.info("Encoding %d mirrored train images too (--hflip_train).", len(mirrored))
            splits[split] = datasets.concatenate_datasets([splits[split], flipped])
    tokens = datasets.DatasetDict(splits)
    if accelerator.is_main_process:
        save_token_dataset(tokens, args.output_dir, identity(args, vqvae))
        push(args, tokens)
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return tokens if accelerator.is_main_process else None


def identity(args: argparse.Namespace, vqvae: VQVAEModel) -> dict:
    source = {"dataset_name": portable_path(args.train_data_dir or args.dataset_name),
              "label_columns": list(args.label_columns)}  # fmt: skip
    if args.hflip_train:
        source["hflip_train"] = True  # a prior trained on these tokens saw mirrored images too
    return tokenizer_identity(vqvae) | {"vqvae_name_or_path": portable_path(args.vqvae_name_or_path), "source": source}


def push(args: argparse.Namespace, tokens: datasets.DatasetDict) -> None:
    if args.push_to_hub:
        tokens.push_to_hub(args.hub_dataset_id)
        HfApi().upload_file(
            path_or_fileobj=f"{args.output_dir}/{TOKENIZER_IDENTITY_FILE}",
            path_in_repo=TOKENIZER_IDENTITY_FILE,
            repo_id=args.hub_dataset_id,
            repo_type="dataset",
        )


@torch.no_grad()
def encode_split_streaming(args, accelerator: Accelerator, vqvae: VQVAEModel, split: str, sha256: str) -> None:
    """This process's shards of `split`, encoded batch by batch into Parquet parts (`hf_vqgen.data.token_shards`)."""
    rank, world_size = accelerator.process_index, accelerator.num_processes
    source = load_streaming_image_dataset(
        args.train_data_dir or args.dataset_name, split, args.image_column, args.label_columns[0], args.id_column
    )
    features = token_features(source)
    source = split_by_process(source, rank, world_size)
    if args.max_samples is not None:  # this process's share of the first max_samples
        source = source.take(args.max_samples // world_size + int(rank < args.max_samples % world_size))
    images = StreamingImages(
        source, PixelTransform(vqvae.config.sample_size, vqvae.config.in_channels, args.resize_mode)
    )
    writer = TokenShardWriter(
        Path(args.output_dir) / split, rank, world_size, features, args.rows_per_shard, sha256, args.resume
    )
    if writer.done:
        return
    if writer.stream_state is not None:
        images.load_state_dict(writer.stream_state)
    loader = torch.utils.data.DataLoader(images, batch_size=args.batch_size, collate_fn=collate_streaming)
    for batch in tqdm(
        loader, desc=f"Encoding {split} (process {rank})", disable=not accelerator.is_local_main_process
    ):
        token_ids = vqvae.encode_to_ids(batch["pixel_values"].to(accelerator.device)).flatten(1)
        columns = {name: batch[name] for name in features if name not in ("token_ids", "label")}
        columns["token_ids"] = token_ids.to(torch.int16).cpu().numpy()
        if "label" in features:
            columns["label"] = batch["label"].tolist()
        writer.add(columns)
        writer.flush(images.state_dict())  # no-op until rows_per_shard rows are pending
    writer.close(images.state_dict())


def encode_streaming(args, accelerator: Accelerator, vqvae: VQVAEModel) -> datasets.DatasetDict | None:
    output_dir = Path(args.output_dir)
    if accelerator.is_main_process:  # no finished-dataset marker until this run has assembled its own
        (output_dir / TOKENIZER_IDENTITY_FILE).unlink(missing_ok=True)
        if not args.resume:
            clear_token_shards(output_dir, args.splits)
    accelerator.wait_for_everyone()
    token_identity = identity(args, vqvae)
    for split in args.splits:
        encode_split_streaming(args, accelerator, vqvae, split, token_identity["weights_sha256"])
    # wait through the shared folder, not a collective: a process with more shards may take far longer. The main
    # process waits for every process's done markers (which assembling removes), the others for the dataset.
    tokens = None
    if accelerator.is_main_process:
        wait_for_files([output_dir / split / f"done-{rank:05d}.json" for split in args.splits
                        for rank in range(accelerator.num_processes)])  # fmt: skip
        tokens = assemble_token_dataset(output_dir, args.splits, token_identity)
        push(args, tokens)
    wait_for_files([output_dir / TOKENIZER_IDENTITY_FILE])
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return tokens


if __name__ == "__main__":
    main(parse_args())
