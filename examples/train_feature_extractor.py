#!/usr/bin/env python
"""Train the classifier whose features the dataset-specific FID / KID / precision / recall use.

    python examples/train_feature_extractor.py --output_dir feature-extractor-fashion-mnist
    python examples/train_feature_extractor.py --dataset_name emoji --resolution 64 --num_channels 3 \
        --identity_column code_point --label_columns label style --output_dir emoji-shape-classifier

Without `--identity_column`: an `ImageClassifier` (global pooling) over `--label_columns` (several become one class
per combination). With it: a `ShapeClassifier` (layout-keeping embedding) with an identity head over that column's
values (e.g. every emoji's code point, in all its styles) and one head per label column. Saves
`save_pretrained(output_dir)` (safetensors) and `eval_results.json` with the test accuracy of each head.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from hf_vqgen import PixelTransform, load_image_dataset, with_pixel_values
from hf_vqgen.data import collate_pixel_values
from hf_vqgen.models import ImageClassifier, ShapeClassifier
from hf_vqgen.training.script_arguments import fill_image_shape
from hf_vqgen.utils import command_line
from hf_vqgen.vocabulary import IGNORE_INDEX


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", required=True, help="`fashion_mnist`, `emoji`, a local folder or Hub id.")
    parser.add_argument(
        "--label_columns",
        nargs="+",
        default=["label"],
        help="Class label column(s); several (e.g. `label style` for emoji) become one class per combination.",
    )
    parser.add_argument(
        "--identity_column",
        default=None,
        help="Column naming each image's identity (e.g. `code_point`): train a ShapeClassifier with an identity head.",
    )
    parser.add_argument("--resolution", type=int, default=None, help="Default: the named dataset's.")
    parser.add_argument("--num_channels", type=int, default=None, choices=(1, 3), help="Default: the named dataset's.")
    parser.add_argument("--output_dir", default="feature-extractor")
    parser.add_argument("--num_epochs", type=int, default=8)
    parser.add_argument("--train_batch_size", type=int, default=128)
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--base_channels", type=int, default=32)
    parser.add_argument("--feature_dim", type=int, default=128)
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--mixed_precision", default=None, choices=("no", "fp16", "bf16"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.num_epochs < 1 or args.train_batch_size < 1:
        parser.error("--num_epochs and --train_batch_size must be >= 1")
    fill_image_shape(parser, args)  # a folder or Hub id must name them
    return args


def augment(pixel_values: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 2 pixels (black borders), batched."""
    flip = torch.rand(pixel_values.shape[0], device=pixel_values.device) < 0.5
    pixel_values = torch.where(flip[:, None, None, None], pixel_values.flip(-1), pixel_values)
    padded = F.pad(pixel_values, (2, 2, 2, 2), value=-1.0)
    dy, dx = torch.randint(0, 5, (2,)).tolist()  # one shift per batch keeps this a cheap slice
    return padded[..., dy : dy + pixel_values.shape[-2], dx : dx + pixel_values.shape[-1]]


def loader(args, split: str, limit: int | None, shuffle: bool) -> torch.utils.data.DataLoader:
    dataset = load_image_dataset(args.dataset_name, split=split, label_column=args.label_columns)
    if "label" not in dataset.column_names:
        raise ValueError(f"{args.dataset_name!r} has no `label` column: a classifier needs labels.")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    rows = with_pixel_values(dataset, PixelTransform(args.resolution, args.num_channels))
    return torch.utils.data.DataLoader(
        rows, batch_size=args.train_batch_size, shuffle=shuffle, collate_fn=collate_pixel_values, drop_last=shuffle
    )


@torch.no_grad()
def accuracy(model, dataloader) -> float:
    model.eval()
    correct = total = 0
    for batch in dataloader:
        _, logits = model(batch["pixel_values"])
        correct += int((logits.argmax(-1) == batch["label"]).sum())
        total += batch["label"].numel()
    return correct / total


def main(args: argparse.Namespace) -> dict:
    if args.identity_column is not None:
        return train_shape_classifier(args)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    train_loader = loader(args, "train", args.max_train_samples, shuffle=True)
    test_loader = loader(args, "test", args.max_eval_samples, shuffle=False)
    label_feature = train_loader.dataset.features["label"]
    num_classes = getattr(label_feature, "num_classes", None) or len(set(train_loader.dataset["label"]))
    model = ImageClassifier(args.num_channels, num_classes, args.base_channels, args.feature_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    total_steps = args.num_epochs * len(train_loader)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=total_steps // 50, num_training_steps=total_steps)
    model, optimizer, train_loader, test_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, test_loader, scheduler
    )

    progress = tqdm(total=total_steps, desc="Steps", disable=not accelerator.is_local_main_process)
    for _ in range(args.num_epochs):
        model.train()
        for batch in train_loader:
            _, logits = model(augment(batch["pixel_values"]))
            loss = F.cross_entropy(logits, batch["label"], label_smoothing=0.1)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    progress.close()

    results = {"test_accuracy": accuracy(model, test_loader), "epochs": args.num_epochs, "dataset": args.dataset_name}
    results["command"] = command_line()  # how this feature network was made: figures scored with it cite it
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(args.output_dir)
        (Path(args.output_dir) / "eval_results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(results, indent=2))
    return results


# the identity-aware gauge (--identity_column)


def shifted(pixel_values: torch.Tensor, max_shift: int = 3) -> torch.Tensor:
    """Random shifts of up to `max_shift` pixels (edges replicated), one per batch; no flips: a mirrored emoji can be
    another one (arrows, flags, letters)."""
    padded = F.pad(pixel_values, (max_shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,)).tolist()
    return padded[..., dy : dy + pixel_values.shape[-2], dx : dx + pixel_values.shape[-1]]


def labelled_images(args, split: str, limit: int | None, identities: list[str] | None = None):
    """(images (N, C, H, W) in [-1, 1], {head: labels (N,)}, identities): the identity head's classes are the
    train split's values (sorted); images of other identities get `IGNORE_INDEX` (ignored by the loss and the accuracy)."""
    columns = [args.identity_column, *args.label_columns]
    dataset = load_image_dataset(args.dataset_name, split=split, label_column=None, extra_columns=columns)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    rows = with_pixel_values(dataset, PixelTransform(args.resolution, args.num_channels))
    images = torch.stack([row["pixel_values"] for row in rows])
    values = dataset[args.identity_column]
    identities = identities or sorted(set(values))
    index = {value: i for i, value in enumerate(identities)}
    labels = {"identity": torch.tensor([index.get(value, IGNORE_INDEX) for value in values])}
    labels |= {column: torch.tensor(dataset[column]) for column in args.label_columns}
    return images, labels, identities


@torch.no_grad()
def head_accuracies(model, images: torch.Tensor, labels: dict, batch_size: int = 500) -> dict[str, float]:
    model.eval()
    logits = [model.head_logits(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    figures = {}
    for name, target in labels.items():
        predicted = torch.cat([part[name] for part in logits]).argmax(-1)
        known = target != IGNORE_INDEX
        figures[name] = float((predicted[known] == target[known]).double().mean()) if known.any() else None
    return figures


def train_shape_classifier(args: argparse.Namespace) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    images, labels, identities = labelled_images(args, "train", args.max_train_samples)
    test_images, test_labels, _ = labelled_images(args, "test", args.max_eval_samples, identities)
    dataset = load_image_dataset(args.dataset_name, split="train", label_column=None, extra_columns=args.label_columns)
    head_names = ["identity", *args.label_columns]
    head_sizes = [len(identities)] + [dataset.features[c].num_classes for c in args.label_columns]
    model = ShapeClassifier(args.num_channels, args.resolution, head_names, head_sizes, feature_dim=args.feature_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    steps_per_epoch = len(images) // args.train_batch_size
    total_steps = args.num_epochs * steps_per_epoch
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=total_steps // 50, num_training_steps=total_steps)
    generator = torch.Generator().manual_seed(args.seed)
    progress = tqdm(total=total_steps, desc="Steps")
    for _ in range(args.num_epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * args.train_batch_size : (step + 1) * args.train_batch_size]
            logits = model.head_logits(shifted(images[batch]))
            # every head learns from the same embedding: identity makes it see shape, the others keep coarse classes
            loss = sum(
                F.cross_entropy(logits[name], labels[name][batch], label_smoothing=0.1, ignore_index=IGNORE_INDEX)
                for name in head_names
            )
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    progress.close()
    results = {
        "train_accuracy": head_accuracies(model, images, labels),
        "test_accuracy": head_accuracies(model, test_images, test_labels),  # identity: test emoji are new ones
        "num_identities": len(identities),
        "epochs": args.num_epochs,
        "dataset": args.dataset_name,
        "command": command_line(),
    }
    model.save_pretrained(args.output_dir)
    (Path(args.output_dir) / "identities.json").write_text(json.dumps(identities))
    (Path(args.output_dir) / "eval_results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(parse_args())
