#!/usr/bin/env python
"""Encode an image dataset into token grids with a trained tokenizer.

    accelerate launch examples/encode_dataset.py --vqvae_name_or_path outputs/vqvae --output_dir outputs/tokens

Writes a `datasets.DatasetDict` (one entry per split) with `token_ids` (the h*w ids in raster order, int16) and
`label` where the source has one, plus the tokenizer's identity (`hf_vqgen_tokenizer.json`). Batched, no grad,
split across Accelerate processes (the main process writes); `--push_to_hub` uploads it as a dataset repo.
"""

from __future__ import annotations

import argparse
import logging

import datasets
from accelerate import Accelerator
from huggingface_hub import HfApi

from hf_vqgen import VQVAEModel, load_image_dataset
from hf_vqgen.data import TOKENIZER_IDENTITY_FILE, encode_image_dataset, save_token_dataset, tokenizer_identity
from hf_vqgen.utils import portable_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vqvae_name_or_path", required=True)
    parser.add_argument("--dataset_name", default="fashion_mnist")
    parser.add_argument("--train_data_dir", default=None, help="Local image folder (overrides --dataset_name).")
    parser.add_argument("--image_column", default="image")
    parser.add_argument(
        "--label_columns",
        nargs="+",
        default=["label"],
        help="Class label column(s); several (e.g. `label style` for emoji) become one label over their combinations.",
    )
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument("--resize_mode", default="resize", choices=("resize", "pad"))
    parser.add_argument("--max_samples", type=int, default=None, help="Truncate each split (debugging).")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_dataset_id", default=None)
    args = parser.parse_args(argv)
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
    splits = {}
    for split in args.splits:
        images = load_image_dataset(
            args.train_data_dir or args.dataset_name,
            split=split,
            image_column=args.image_column,
            label_column=args.label_columns[0] if len(args.label_columns) == 1 else args.label_columns,
        )
        if args.max_samples is not None:
            images = images.select(range(min(args.max_samples, len(images))))
        splits[split] = encode_image_dataset(vqvae, images, accelerator, args.batch_size, args.resize_mode)
    tokens = datasets.DatasetDict(splits)
    if accelerator.is_main_process:
        identity = tokenizer_identity(vqvae) | {"vqvae_name_or_path": portable_path(args.vqvae_name_or_path)}
        save_token_dataset(tokens, args.output_dir, identity)
        if args.push_to_hub:
            tokens.push_to_hub(args.hub_dataset_id)
            HfApi().upload_file(
                path_or_fileobj=f"{args.output_dir}/{TOKENIZER_IDENTITY_FILE}",
                path_in_repo=TOKENIZER_IDENTITY_FILE,
                repo_id=args.hub_dataset_id,
                repo_type="dataset",
            )
    accelerator.wait_for_everyone()  # every rank tears the process group down together (gloo can hang otherwise)
    accelerator.end_training()
    return tokens if accelerator.is_main_process else None


if __name__ == "__main__":
    main(parse_args())
