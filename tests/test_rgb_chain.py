"""Colour at a 16x16 grid, end to end with tiny configs: an RGB image folder (two label columns' worth of classes,
transparent backgrounds) -> tokenizer 64x64x3 -> 16x16 tokens -> both priors -> sample -> save -> load -> the same
samples; completing from the first 4 of 16 token rows keeps those rows."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline, load_pipeline


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import encode_dataset  # noqa: E402
import sample  # noqa: E402
import train_prior  # noqa: E402
import train_vqvae  # noqa: E402


TINY_RGB_VQVAE_ARGS = [
    "--resolution", "64", "--num_channels", "3", "--block_out_channels", "4", "8", "8", "--latent_channels", "8",
    "--norm_num_groups", "4", "--vq_embed_dim", "4", "--num_vq_embeddings", "32", "--train_batch_size", "4",
    "--eval_batch_size", "8", "--max_eval_samples", "8", "--report_to", "none", "--kmeans_init",
    "--no_mid_block_attention",
]  # fmt: skip
TINY_PRIOR_ARGS = ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--train_batch_size", "4", "--report_to", "none",
                   "--num_validation_images", "2", "--eval_batch_size", "8", "--max_train_steps", "1"]  # fmt: skip


def write_rgb_folder(root: Path) -> Path:
    """train/ and test/ with three classes of 64x64 RGBA images: a coloured disc on a transparent background."""
    rng = np.random.default_rng(0)
    colours = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 220)}
    for split, count in (("train", 4), ("test", 2)):
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                pixels = np.zeros((64, 64, 4), dtype=np.uint8)
                yy, xx = np.mgrid[:64, :64]
                radius = rng.integers(12, 28)
                disc = (yy - 32) ** 2 + (xx - 32) ** 2 < radius**2
                pixels[disc] = (*colour, 255)
                Image.fromarray(pixels, mode="RGBA").save(root / split / name / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def rgb_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    images = write_rgb_folder(root / "images")
    tokenizer = root / "vqvae"
    train_vqvae.main(
        train_vqvae.parse_args(
            TINY_RGB_VQVAE_ARGS
            + ["--train_data_dir", str(images), "--output_dir", str(tokenizer), "--max_train_steps", "2"]  # fmt: skip
        )
    )
    tokens = root / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(
            ["--vqvae_name_or_path", str(tokenizer), "--train_data_dir", str(images), "--output_dir", str(tokens)]
        )
    )
    pipelines = {}
    for kind in ("ar", "diffusion"):
        pipelines[kind] = root / kind
        extra = ["--num_train_timesteps", "10", "--num_inference_steps", "2"] if kind == "diffusion" else []
        train_prior.main(
            train_prior.parse_args(
                TINY_PRIOR_ARGS
                + [
                    "--prior_type",
                    kind,
                    "--vqvae_name_or_path",
                    str(tokenizer),
                    "--tokens_dir",
                    str(tokens),
                    "--output_dir",
                    str(pipelines[kind]),
                ]
                + extra  # fmt: skip
            )
        )
    return pipelines, images


@pytest.mark.parametrize(("kind", "cls"), [("ar", VQGenPipeline), ("diffusion", DiscreteDiffusionPipeline)])
def test_rgb_pipelines_sample_16x16_grids_reproducibly_after_a_round_trip(rgb_chain, tmp_path, kind, cls):
    pipeline = load_pipeline(rgb_chain[0][kind])
    pipeline.set_progress_bar_config(disable=True)
    assert type(pipeline) is cls and (pipeline.layout.grid_height, pipeline.layout.grid_width) == (16, 16)
    assert pipeline.layout.num_classes == 3
    kwargs = {"batch_size": 2, "class_labels": [0, 2], "output_type": "pt"}
    if kind == "diffusion":
        kwargs["num_inference_steps"] = 2
    first = pipeline(generator=torch.Generator().manual_seed(0), **kwargs)
    assert first.images.shape == (2, 3, 64, 64) and first.token_ids.shape == (2, 16, 16)
    pipeline.save_pretrained(tmp_path / "copy")
    again = load_pipeline(tmp_path / "copy")
    again.set_progress_bar_config(disable=True)
    second = again(generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(first.token_ids, second.token_ids) and torch.equal(first.images, second.images)


def test_completion_from_4_of_16_rows_keeps_those_rows(rgb_chain):
    pipeline = load_pipeline(rgb_chain[0]["ar"])
    pipeline.set_progress_bar_config(disable=True)
    image = Image.open(rgb_chain[1] / "test" / "red" / "0.png")  # RGBA: composited on white by the image rule
    tokens = pipeline.vqvae.encode_to_ids(pipeline.image_to_tensor(image))
    out = pipeline(image=image, num_prefix_rows=4, generator=torch.Generator().manual_seed(0), output_type="pt")
    assert torch.equal(out.token_ids[:, :4], tokens[:, :4])
    assert out.images.shape == (1, 3, 64, 64)


def test_sample_writes_completions_of_a_folder_and_strips_at_other_temperatures(rgb_chain, tmp_path):
    """What `make demo` runs for the emoji pipelines: completions of shipped images (no dataset needed), the
    reverse process at a low and a high temperature."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("b.png", "a.png"):
        Image.open(rgb_chain[1] / "test" / "green" / "0.png").save(images / name)
    written = sample.main(
        sample.parse_args(
            [
                "--pipeline",
                str(rgb_chain[0]["diffusion"]),
                "--output_dir",
                str(tmp_path / "out"),
                "--images_dir",
                str(images),
                "--num_inference_steps",
                "2",
                "--samples_per_class",
                "1",
                "--gif",
                "--strip_temperatures",
                "0.5",
                "2",
            ]  # fmt: skip
        )
    )
    completions = Image.open(written["completions"])
    assert completions.size == (2 * 64, 4 * 64)  # originals, reconstructions, completions from 4 and 8 rows
    assert {"strip_t0.5", "strip_t2"} <= written.keys() and all(path.is_file() for path in written.values())
