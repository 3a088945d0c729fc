"""Each example script runs end to end for a couple of steps on tiny data."""

import json
import sys
from pathlib import Path

import pytest
import torch
from diffusers import VQModel

from hf_vqgen import VQVAEModel


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import train_vqvae  # noqa: E402


TINY_VQVAE_ARGS = [
    "--dataset_name", "fashion_mnist", "--block_out_channels", "8", "16", "--latent_channels", "8",
    "--norm_num_groups", "4", "--vq_embed_dim", "4", "--num_vq_embeddings", "16", "--train_batch_size", "8",
    "--eval_batch_size", "16", "--max_eval_samples", "16", "--report_to", "none", "--kmeans_init",
    "--dead_code_threshold", "1",
]  # fmt: skip


@pytest.mark.parametrize("gan", [False, True])
def test_train_vqvae_two_steps_writes_loadable_model(tmp_path, fake_fashion_mnist, gan):
    output_dir = tmp_path / "vqvae"
    extra = ["--feature_matching_weight", "0.1", "--disc_weight", "0.1", "--disc_start", "1"] if gan else []
    args = train_vqvae.parse_args(
        TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--max_train_steps", "2"] + extra
    )
    results = train_vqvae.main(args)

    assert (output_dir / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(output_dir.glob("*.bin")) and not list(output_dir.glob("*.pt"))
    saved = json.loads((output_dir / "eval_results.json").read_text())
    assert saved == results and saved["train_steps"] == 2 and saved["num_images"] == 16
    assert 0 < saved["codebook_usage"] <= 1 and saved["psnr"] > 0
    assert (output_dir / "reconstructions.png").is_file()

    model = VQVAEModel.from_pretrained(output_dir)
    pixel_values = torch.rand(2, 1, 28, 28) * 2 - 1
    assert model.encode_to_ids(pixel_values).shape == (2, 14, 14)
    stock = VQModel.from_pretrained(output_dir)  # the compatibility contract holds for trained checkpoints too
    assert torch.equal(stock.decode(stock.encode(pixel_values).latents).sample, model(pixel_values).sample)


def test_train_vqvae_resumes_from_latest_checkpoint(tmp_path, fake_fashion_mnist):
    output_dir = tmp_path / "vqvae"
    common = TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--checkpointing_steps", "2"]
    train_vqvae.main(train_vqvae.parse_args(common + ["--max_train_steps", "2"]))
    assert (output_dir / "checkpoint-2").is_dir() and not list(output_dir.glob(".partial-*"))

    results = train_vqvae.main(
        train_vqvae.parse_args(common + ["--max_train_steps", "4", "--resume_from_checkpoint", "latest"])
    )
    assert results["train_steps"] == 4
    assert (output_dir / "checkpoint-4").is_dir()


def test_recipe_file_parses():
    recipe = Path(__file__).resolve().parents[1] / "examples" / "recipes" / "vqvae_fashion_mnist.args"
    args = train_vqvae.parse_args([f"@{recipe}", "--max_train_steps", "3"])
    assert args.max_train_steps == 3 and args.dataset_name == "fashion_mnist"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_train_steps", "0"], "max_train_steps"),
        (["--train_batch_size", "0"], "train_batch_size"),
        (["--resolution", "30", "--block_out_channels", "8", "16", "16"], "not divisible"),
    ],
)
def test_train_vqvae_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        train_vqvae.parse_args(argv)
    assert message in capsys.readouterr().err
