#!/usr/bin/env python
"""Sample from a saved pipeline of either prior: a class-conditional grid (one row per class, or an unconditional
grid), and completions of test images (or of `--images_dir`) from their first token rows: the originals, their
reconstructions through the tokenizer, then each completion, row by row (the discrete-diffusion pipeline completes
them by inpainting the rows below). `--gif` also writes a discrete-diffusion pipeline's reverse process as
`reverse_process.gif` and `reverse_process.png` (a strip of frames per sample), and `--strip_temperatures` the same
at other temperatures.

    python examples/sample.py --pipeline outputs/ar-pipeline --output_dir outputs/samples
    python examples/sample.py --pipeline outputs/diffusion-pipeline --num_inference_steps 16 --gif \
        --strip_temperatures 0.5 2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from PIL import Image

from hf_vqgen import PixelTransform, export_reverse_process, load_pipeline
from hf_vqgen.data.image_folder import IMAGE_EXTENSIONS
from hf_vqgen.evaluation.features import load_split_images
from hf_vqgen.image_utils import image_grid, pil_grid
from hf_vqgen.model_cards import recorded_data_source


logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="Pipeline folder or Hub repo id.")
    parser.add_argument("--output_dir", default="samples")
    parser.add_argument("--samples_per_class", type=int, default=8)
    parser.add_argument("--classes_per_row", type=int, default=1,
                        help="Consecutive classes sharing a grid row (3 for emoji: a category's three styles).")  # fmt: skip
    # sampling settings: None = the defaults saved with the pipeline (`pipeline.sampling_defaults`)
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top_k", type=int, default=None, help="0: no top-k.")
    parser.add_argument("--top_p", type=float, default=None, help="Autoregressive prior only.")
    parser.add_argument("--num_inference_steps", type=int, default=None, help="Discrete-diffusion prior only.")
    parser.add_argument("--gif", action="store_true", help="Write the reverse process (discrete diffusion only).")
    parser.add_argument(
        "--strip_temperatures",
        type=float,
        nargs="+",
        default=[],
        help="Discrete diffusion: also write the reverse process at these temperatures (reverse_process_t<T>.png).",
    )
    parser.add_argument("--dataset_name", default=None,
                        help="Source of the test images to complete (default: the data the pipeline was trained on).")  # fmt: skip
    parser.add_argument(
        "--images_dir", default=None, help="Complete the images of this folder instead (sorted by name; no dataset)."
    )
    parser.add_argument("--num_completions", type=int, default=8, help="Test images to complete (0: none).")
    parser.add_argument("--prefix_rows", type=int, nargs="+", default=None, help="Default: a quarter and a half.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (
        args.samples_per_class < 1
        or args.num_completions < 0
        or (args.num_inference_steps is not None and args.num_inference_steps < 1)
    ):
        parser.error("--samples_per_class, --num_inference_steps must be >= 1 and --num_completions >= 0")
    return args


def images_to_complete(pipeline, args) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1]: the first `--num_completions` test images, or the images of `--images_dir`."""
    config = pipeline.vqvae.config
    if args.images_dir is None:
        dataset = args.dataset_name or recorded_data_source(args.pipeline)
        if dataset is None:
            raise ValueError(
                f"{args.pipeline} records no training data: pass --dataset_name or --images_dir to complete."
            )
        logger.info("Completing the first %d test images of %s.", args.num_completions, dataset)
        return load_split_images(dataset, "test", config.sample_size, config.in_channels, args.num_completions)
    # hidden files (macOS `._*` resource forks, `.DS_Store`) are skipped, as the folder loader skips them
    paths = sorted(
        p
        for p in Path(args.images_dir).iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    if not paths:
        raise ValueError(f"--images_dir {args.images_dir} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    transform = PixelTransform(config.sample_size, config.in_channels)
    return torch.stack([transform(Image.open(path)) for path in paths[: args.num_completions]])


def main(args: argparse.Namespace) -> dict[str, Path]:
    pipeline = load_pipeline(args.pipeline)
    if (args.gif or args.strip_temperatures) and not pipeline.has_reverse_process:
        raise ValueError(
            f"--gif and --strip_temperatures show a reverse process; a {type(pipeline).__name__} has none."
        )
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sampling = pipeline.select_sampling_arguments(
        guidance_scale=args.guidance_scale, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        num_inference_steps=args.num_inference_steps,
    )  # fmt: skip
    rows_in_grid = pipeline.layout.grid_height
    if args.prefix_rows and not all(0 <= rows <= rows_in_grid for rows in args.prefix_rows):
        raise ValueError(
            f"--prefix_rows must lie in [0, {rows_in_grid}] (the grid's token rows), got {args.prefix_rows}."
        )
    layout, written = pipeline.layout, {}

    # 1. a grid: one row per class, or per `--classes_per_row` consecutive classes (or 8 rows unconditionally)
    if layout.num_classes and layout.num_classes % args.classes_per_row:
        raise ValueError(f"--classes_per_row {args.classes_per_row} does not divide the {layout.num_classes} classes.")
    rows = layout.num_classes or 8
    labels = torch.arange(rows).repeat_interleave(args.samples_per_class) if layout.num_classes else None
    columns = args.samples_per_class * (args.classes_per_row if layout.num_classes else 1)
    generator = torch.Generator(device=pipeline.device).manual_seed(args.seed)
    extra = {"return_intermediates": True} if args.gif else {}
    samples = pipeline(rows * args.samples_per_class, class_labels=labels, generator=generator,
                       output_type="pil" if args.gif else "pt", **sampling, **extra)  # fmt: skip
    written["grid"] = output_dir / "samples.png"
    if args.gif:
        pil_grid(samples.images, columns=columns).save(written["grid"])
        written["gif"], written["strip"] = output_dir / "reverse_process.gif", output_dir / "reverse_process.png"
        export_reverse_process(samples.intermediates, written["gif"], written["strip"], columns=columns)
    else:
        image_grid(samples.images * 2 - 1, columns=columns).save(written["grid"])

    # 2. completions of test images from their top token rows
    if args.num_completions:
        originals = images_to_complete(pipeline, args)
        prefix_rows = args.prefix_rows or [layout.grid_height // 4, layout.grid_height // 2]
        reconstructions = pipeline.vqvae.decode_ids(pipeline.vqvae.encode_to_ids(originals))
        strips = [originals, reconstructions]  # what the tokenizer keeps of them: the best any completion can do
        for num_rows in prefix_rows:
            given = pipeline.completion_inputs(originals, num_rows)
            completed = pipeline(**given, output_type="pt",
                                 generator=torch.Generator(device=pipeline.device).manual_seed(args.seed), **sampling)  # fmt: skip
            strips.append(completed.images * 2 - 1)
        written["completions"] = output_dir / "completions.png"
        image_grid(torch.cat(strips), columns=len(originals)).save(written["completions"])
    # 3. the reverse process at other temperatures, as strips of frames (one row per sample)
    for temperature in args.strip_temperatures:
        strip_labels = torch.arange(4) % layout.num_classes if layout.num_classes else None
        out = pipeline(4, class_labels=strip_labels,
                       generator=torch.Generator(device=pipeline.device).manual_seed(args.seed), output_type="pil",
                       return_intermediates=True, **{**sampling, "temperature": temperature})  # fmt: skip
        gif = output_dir / f"reverse_process_t{temperature:g}.gif"
        written[f"strip_t{temperature:g}"] = output_dir / f"reverse_process_t{temperature:g}.png"
        export_reverse_process(out.intermediates, gif, written[f"strip_t{temperature:g}"], columns=4)
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


if __name__ == "__main__":
    main(parse_args())
