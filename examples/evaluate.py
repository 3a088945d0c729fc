#!/usr/bin/env python
"""Score a tokenizer or a set of generated images against a dataset split; writes one JSON and a sample grid.

    # a pipeline (autoregressive or discrete diffusion): samples (classes cycled evenly), scored against the test split
    python examples/evaluate.py --pipeline outputs/ar-pipeline --num_samples 10000 --output_dir eval/ar
    python examples/evaluate.py --pipeline outputs/diffusion-pipeline --num_inference_steps 16 --output_dir eval/dd
    # a tokenizer: PSNR, SSIM, codebook usage / perplexity and reconstruction FID (rFID) on the test split
    python examples/evaluate.py --tokenizer outputs/vqvae --output_dir eval/vqvae
    # any generator's images, as .npy: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), or float (N, C, H, W) in [-1, 1]
    python examples/evaluate.py --images_npy samples.npy --output_dir eval/samples

FID / KID / precision / recall / classifier score are computed in the feature space of `--feature_extractor`
(default: the classifier trained on `--dataset_name`, `benchmarks/assets/<dataset_name>_classifier/`, shipped for
fashion_mnist and emoji); compare figures only at equal sample counts. For a conditional prior scored with a
classifier trained on its label columns, `conditioning` says how often a sample shows the class it was asked for
(per column, e.g. emoji category and style), next to the classifier's accuracy on real images.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from hf_vqgen import (
    DiscreteDiffusionPipeline,
    PixelTransform,
    VQGenPipeline,
    VQVAEModel,
    load_image_dataset,
    load_pipeline,
    with_pixel_values,
)
from hf_vqgen.evaluation import (
    condition_accuracy,
    evaluate_tokenizer,
    nearest_training_images,
    sample_images,
    score_images,
)
from hf_vqgen.evaluation.features import (
    extract_features,
    load_feature_extractor,
    load_split_images,
    reference_features,
)
from hf_vqgen.evaluation.metrics import heldout_bits_per_token
from hf_vqgen.image_utils import image_grid, reconstruction_grid
from hf_vqgen.model_cards import CONTEXT_FILE, recorded_data_source, update_model_card
from hf_vqgen.utils import command_line, portable_path


# a classifier trained on each dataset with examples/train_feature_extractor.py ships here, one folder per dataset
ASSETS = Path(__file__).resolve().parents[1] / "benchmarks" / "assets"


def relative_to_repo(path: Path) -> str:
    return path.relative_to(ASSETS.parents[1]).as_posix()


CARD_METRICS = ("fid", "kid", "precision", "recall", "classifier_score", "psnr", "ssim", "bits_per_token")
PACKAGES = ("hf_vqgen", "torch", "diffusers", "transformers", "accelerate", "datasets")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--pipeline", help="A saved pipeline of either prior (folder or Hub repo id): sample and score it."
    )
    source.add_argument("--tokenizer", help="Folder of a saved VQVAEModel.")
    source.add_argument("--images_npy", help="A .npy array of images from any generator.")
    parser.add_argument("--dataset_name", default=None,
                        help="The reference data (default: what --pipeline / --tokenizer recorded it was trained on).")  # fmt: skip
    parser.add_argument("--split", default="test", help="Reference split.")
    parser.add_argument(
        "--label_columns",
        nargs="+",
        default=None,
        help="Labels for held-out likelihoods (--pipeline, AR); default: those the prior was trained with.",
    )
    parser.add_argument("--resolution", type=int, default=None, help="--tokenizer: default its sample_size.")
    parser.add_argument("--num_channels", type=int, default=None, choices=(1, 3), help="Default: the tokenizer's.")
    parser.add_argument("--num_samples", type=int, default=10000, help="Images scored (the first N).")
    parser.add_argument(
        "--feature_extractor",
        default=None,
        help="Classifier folder or 'inception'; default: benchmarks/assets/<dataset_name>_classifier.",
    )
    parser.add_argument("--batch_size", type=int, default=100, help="Sampling / reconstruction batch size.")
    sampling = parser.add_argument_group("sampling (--pipeline)")
    # sampling settings: None = the defaults saved with the pipeline (`pipeline.sampling_defaults`)
    sampling.add_argument("--guidance_scale", type=float, default=None)
    sampling.add_argument("--temperature", type=float, default=None)
    sampling.add_argument("--top_k", type=int, default=None, help="0: no top-k.")
    sampling.add_argument("--top_p", type=float, default=None, help="Autoregressive prior only.")
    sampling.add_argument("--num_inference_steps", type=int, default=None, help="Discrete-diffusion prior only.")
    parser.add_argument(
        "--memorisation",
        action="store_true",
        help="Also find each image's nearest training image (feature space) and write memorisation.png.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="eval-results")
    parser.add_argument(
        "--update_card", action="store_true", help="Add the metrics to the model card of --pipeline / --tokenizer."
    )
    args = parser.parse_args(argv)
    if args.dataset_name is None:  # the data the scored model recorded, never a default it did not use
        recorded = [recorded_data_source(p) for p in (args.pipeline, args.tokenizer) if p and Path(p).is_dir()]
        args.dataset_name = next((r for r in recorded if r), None)
        if args.dataset_name is None:
            parser.error("pass --dataset_name: the reference images (nothing scored here records its training data)")
    if args.feature_extractor is None:
        default = ASSETS / f"{args.dataset_name}_classifier"
        if not default.is_dir():
            parser.error(
                f"no feature network ships for --dataset_name {args.dataset_name!r} ({relative_to_repo(default)}): "
                "train one with examples/train_feature_extractor.py and pass --feature_extractor, or 'inception'"
            )
        args.feature_extractor = str(default)
    if args.update_card and not (args.pipeline or args.tokenizer):
        parser.error("--update_card needs a --pipeline or --tokenizer folder")
    if (
        args.num_samples < 2
        or args.batch_size < 1
        or (args.num_inference_steps is not None and args.num_inference_steps < 1)
    ):
        parser.error("--num_samples must be >= 2, --batch_size and --num_inference_steps >= 1")
    return args


def images_from_npy(path: str, num_samples: int) -> torch.Tensor:
    """An image array as (N, C, H, W) float in [-1, 1]; the layout is told apart by where the 1 or 3 channels are."""
    array = np.load(path, allow_pickle=False)[:num_samples]
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(f"--images_npy must hold (N, H, W), (N, H, W, C) or (N, C, H, W) images, got {array.shape}.")
    if array.dtype == np.uint8:
        return torch.from_numpy(array.astype(np.float32) / 127.5 - 1.0)
    images = torch.from_numpy(array.astype(np.float32))
    if not torch.isfinite(images).all() or images.min() < -1.0 or images.max() > 1.0:
        raise ValueError("Float --images_npy arrays must be finite and in [-1, 1] (or pass uint8 in [0, 255]).")
    return images


def sample_pipeline(args) -> tuple[torch.Tensor, dict, VQGenPipeline | DiscreteDiffusionPipeline]:
    """`num_samples` images from a saved pipeline, classes cycled evenly for a conditional prior (fixed seed); what
    was sampled, and the pipeline."""
    pipeline = load_pipeline(args.pipeline)
    num_classes = pipeline.layout.num_classes
    sampling = pipeline.select_sampling_arguments(
        guidance_scale=args.guidance_scale, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        num_inference_steps=args.num_inference_steps,
    )  # fmt: skip
    images, steps_run = sample_images(pipeline, args.num_samples, args.batch_size, args.seed, **sampling)
    info = {"pipeline_class": type(pipeline).__name__, "num_classes": num_classes}
    info["sampling"] = pipeline.resolve_sampling(**sampling)  # what was used: given flags over the saved defaults
    info["classes"] = "cycled evenly" if num_classes else None
    if steps_run[0] is not None:
        info["mean_steps_run"] = sum(steps_run) / len(steps_run)
    return images, info, pipeline


def prior_likelihood(pipeline: VQGenPipeline, args) -> dict:
    """Held-out bits per token / image of the prior on the reference split, encoded with the pipeline's tokenizer."""
    label_columns = args.label_columns or trained_label_columns(args.pipeline)
    dataset = load_image_dataset(args.dataset_name, split=args.split, label_column=label_columns)
    feature = dataset.features.get("label")
    if pipeline.layout.num_classes and getattr(feature, "num_classes", pipeline.layout.num_classes) != (
        pipeline.layout.num_classes
    ):  # scoring with another label set would give every image a wrong class token, silently
        raise ValueError(
            f"The prior has {pipeline.layout.num_classes} classes but --label_columns {label_columns} of "
            f"{args.dataset_name!r} give {feature.num_classes}: pass the columns it was trained with."
        )
    dataset = dataset.select(range(min(args.num_samples, len(dataset))))
    config = pipeline.vqvae.config
    transform = PixelTransform(config.sample_size, config.in_channels)
    rows = with_pixel_values(dataset, transform)
    images = torch.stack([rows[i]["pixel_values"] for i in range(len(rows))])
    token_ids = torch.cat([pipeline.vqvae.encode_to_ids(chunk) for chunk in images.split(args.batch_size)]).flatten(1)
    labels = torch.tensor(dataset["label"]) if "label" in dataset.column_names else None
    return heldout_bits_per_token(pipeline.prior, pipeline.layout, token_ids, labels, args.batch_size)


def trained_label_columns(pipeline_path) -> list[str]:
    """The `--label_columns` the prior was trained with, as its training script recorded them (default `label`)."""
    context = Path(pipeline_path) / CONTEXT_FILE
    hyperparameters = json.loads(context.read_text()).get("hyperparameters", {}) if context.is_file() else {}
    return list(hyperparameters.get("label_columns") or ["label"])


def classifier_label_columns(feature_extractor: str) -> list[str] | None:
    """The label columns a classifier from examples/train_feature_extractor.py was trained on (None: not one)."""
    results = Path(feature_extractor) / "eval_results.json"
    if not results.is_file():
        return None
    return list(json.loads(results.read_text()).get("label_columns") or ["label"])


def conditioning(args, pipeline, images: torch.Tensor, extractor) -> dict | None:
    """Does each sample show the class it was asked for? The classifier's accuracy on the samples (classes
    cycled as `sample_images` cycles them) per label column, next to its accuracy on the real reference split and on
    that split's reconstructions through the pipeline's tokenizer (the ceilings). Only for a conditional prior
    scored with a classifier trained on the prior's label columns."""
    columns = args.label_columns or trained_label_columns(args.pipeline)
    if not pipeline.layout.num_classes or classifier_label_columns(args.feature_extractor) != columns:
        return None
    sizes = {
        column: load_image_dataset(args.dataset_name, split=args.split, label_column=column).features["label"].num_classes
        for column in columns
    }  # fmt: skip
    if math.prod(sizes.values()) != pipeline.layout.num_classes:
        return None  # another label set than the prior's; prior_likelihood names the mismatch
    labels = torch.arange(len(images)) % pipeline.layout.num_classes
    _, logits = extract_features(extractor, images, desc="Sample classes")
    _, reference_logits = reference_features(
        extractor, args.dataset_name, args.split, images.shape[-1], images.shape[1]
    )
    reference_labels = torch.tensor(
        load_image_dataset(args.dataset_name, split=args.split, label_column=columns)["label"]
    )
    # the same images through the pipeline's tokenizer: the most any prior over these tokens can show
    originals = load_split_images(args.dataset_name, args.split, images.shape[-1], images.shape[1])
    reconstructions, _ = evaluate_tokenizer(
        pipeline.vqvae, originals.split(args.batch_size), keep_reconstructions=True
    )
    _, reconstruction_logits = extract_features(extractor, reconstructions, desc="Reconstruction classes")
    return {
        "label_columns": columns,
        "samples": condition_accuracy(logits, labels, sizes),
        "real_images": condition_accuracy(reference_logits, reference_labels, sizes),
        "reconstructions": condition_accuracy(reconstruction_logits, reference_labels, sizes),
    }


def portable_settings(args: argparse.Namespace) -> dict:
    """The arguments as a results file records them: what was scored and the feature network as repo-relative
    paths or repo ids, never this machine's paths."""
    settings = vars(args).copy()
    for key in ("pipeline", "tokenizer", "images_npy", "feature_extractor", "output_dir"):
        settings[key] = portable_path(settings[key])
    return settings


def evaluator_label(settings: dict, num_images: int) -> str:
    """How the card's metrics were measured, sampling settings included (one card may list several settings)."""
    label = f"examples/evaluate.py: {num_images} "
    if settings.get("pipeline"):
        used = settings["sampling"]
        sampling = [f"guidance {used['guidance_scale']:g}", f"temperature {used['temperature']:g}"]
        if used.get("top_k"):
            sampling.append(f"top-k {used['top_k']}")
        if used.get("num_inference_steps") is not None:
            sampling.insert(0, f"{used['num_inference_steps']} steps")
        if used.get("top_p") is not None:
            sampling.append(f"top-p {used['top_p']:g}")
        label += f"samples ({', '.join(sampling)}, seed {settings['seed']})"
    else:
        label += "reconstructions"
    return f"{label} vs the {settings['split']} split, {Path(settings['feature_extractor']).name} features"


def main(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.monotonic()
    extractor = load_feature_extractor(args.feature_extractor)
    scored = portable_path(args.pipeline or args.tokenizer or args.images_npy)
    results = {"scored": scored, "metrics": {}, "settings": portable_settings(args), "command": command_line()}
    if args.pipeline:
        images, sampling, pipeline = sample_pipeline(args)
        timings["generate_seconds"] = time.monotonic() - start
        grid = image_grid(images[:64], columns=8)
        results["settings"].update(what="pipeline samples", **sampling)
        if pipeline.has_exact_likelihood:
            results["metrics"].update(prior_likelihood(pipeline, args))
    elif args.tokenizer:
        tokenizer = VQVAEModel.from_pretrained(args.tokenizer).eval()
        originals = load_split_images(
            args.dataset_name,
            args.split,
            args.resolution or tokenizer.config.sample_size,
            args.num_channels or tokenizer.config.in_channels,
            args.num_samples,
        )
        images, results["metrics"] = evaluate_tokenizer(
            tokenizer, originals.split(args.batch_size), keep_reconstructions=True
        )
        grid = reconstruction_grid(originals[:32], images[:32])
        results["settings"]["what"] = "tokenizer reconstructions of the reference split (rFID)"
    else:
        images = images_from_npy(args.images_npy, args.num_samples)
        grid = image_grid(images[:64], columns=8)
        results["settings"]["what"] = "images from --images_npy"
    timings.setdefault("generate_seconds", time.monotonic() - start)
    timings["images_per_second"] = len(images) / timings["generate_seconds"]

    start = time.monotonic()
    results["metrics"].update(score_images(images, extractor, args.dataset_name, args.split))
    timings["score_seconds"] = time.monotonic() - start
    if args.pipeline:
        results["conditioning"] = conditioning(args, pipeline, images, extractor)
    if args.memorisation and not args.tokenizer:
        memorisation = nearest_training_images(images, extractor, args.dataset_name, args.split)
        nearest = memorisation.pop("nearest_indices")[:16]
        results["memorisation"] = memorisation
        train = load_split_images(args.dataset_name, "train", images.shape[-1], images.shape[1])
        pairs = torch.stack([torch.stack([images[i], train[j]]) for i, j in enumerate(nearest)], dim=1).flatten(0, 1)
        image_grid(pairs, columns=len(nearest)).save(output_dir / "memorisation.png")  # samples over their nearest
    results["timings"] = timings
    results["versions"] = {name: importlib.metadata.version(name) for name in PACKAGES}
    results["versions"]["python"] = platform.python_version()

    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    grid.save(output_dir / "samples.png")
    if args.update_card:
        card_metrics = {key: value for key, value in results["metrics"].items() if key in CARD_METRICS}
        evaluator = evaluator_label(results["settings"], len(images))
        print(f"Updated {update_model_card(args.pipeline or args.tokenizer, evaluator, card_metrics)}")
    print(json.dumps(results["metrics"], indent=2))
    return results


if __name__ == "__main__":
    main(parse_args())
