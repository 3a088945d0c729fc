"""Each example script runs end to end for a couple of steps on tiny data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import VQModel

from hf_vqgen import DiscreteDiffusionPipeline, VQGenPipeline, VQVAEModel, load_pipeline
from hf_vqgen.data import load_token_dataset
from hf_vqgen.evaluation import score_images
from hf_vqgen.evaluation.features import load_feature_extractor
from hf_vqgen.models import ImageClassifier
from hf_vqgen.training.tracking import read_metrics


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import encode_dataset  # noqa: E402
import evaluate  # noqa: E402
import sample  # noqa: E402
import train_feature_extractor  # noqa: E402
import train_prior  # noqa: E402
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
    assert "library_name: hf_vqgen" in (output_dir / "README.md").read_text()  # the model card

    model = VQVAEModel.from_pretrained(output_dir)
    pixel_values = torch.rand(2, 1, 28, 28) * 2 - 1
    assert model.encode_to_ids(pixel_values).shape == (2, 14, 14)
    stock = VQModel.from_pretrained(output_dir)  # the compatibility contract holds for trained checkpoints too
    assert torch.equal(stock.decode(stock.encode(pixel_values).latents).sample, model(pixel_values).sample)


def test_train_vqvae_with_fsq_writes_a_tokenizer_stock_diffusers_decodes(tmp_path, fake_fashion_mnist):
    output_dir = tmp_path / "fsq"
    drop = {"--vq_embed_dim": 1, "--num_vq_embeddings": 1, "--kmeans_init": 0, "--dead_code_threshold": 1}
    argv, skip = [], 0
    for arg in TINY_VQVAE_ARGS:  # the tiny recipe without its VQ-only options
        if skip or arg in drop:
            skip = drop.get(arg, skip - 1) if not skip else skip - 1
            continue
        argv.append(arg)
    args = train_vqvae.parse_args(
        argv
        + ["--output_dir", str(output_dir), "--max_train_steps", "2", "--quantizer", "fsq", "--fsq_levels", "5", "4"]
    )
    assert (args.num_vq_embeddings, args.vq_embed_dim) == (20, 2)
    results = train_vqvae.main(args)
    model = VQVAEModel.from_pretrained(output_dir).eval()
    assert model.config.quantizer_type == "fsq" and results["codebook_usage"] > 0
    token_ids = model.encode_to_ids(torch.rand(2, 1, 28, 28) * 2 - 1)
    stock = VQModel.from_pretrained(output_dir).eval()
    quant = stock.quantize.get_codebook_entry(token_ids.flatten(), (2, *token_ids.shape[1:], 2))
    assert torch.equal(stock.decode(quant, force_not_quantize=True).sample.clamp(-1, 1), model.decode_ids(token_ids))
    for conflicting in (["--num_vq_embeddings", "256"], ["--kmeans_init"]):
        with pytest.raises(SystemExit):
            train_vqvae.parse_args(["--quantizer", "fsq", "--fsq_levels", "8", "8", *conflicting])


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


ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "examples" / "recipes"


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.args")), ids=lambda p: p.stem)
def test_recipe_files_parse_and_later_flags_override_them(recipe):
    script = train_vqvae if recipe.name.startswith("vqvae") else train_prior
    required = [] if script is train_vqvae else ["--vqvae_name_or_path", "vqvae"]
    args = script.parse_args([f"@{recipe}", *required, "--max_train_steps", "3"])
    assert args.max_train_steps == 3 and recipe.stem.split("_", 1)[1].startswith(args.dataset_name)
    assert "minutes on 2 CPU cores" in recipe.read_text()  # every recipe states its budget in its header


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_train_steps", "0"], "max_train_steps"),
        (["--train_batch_size", "0"], "train_batch_size"),
        (["--resolution", "30", "--block_out_channels", "8", "16", "16"], "not divisible"),
        (["--max_train_minutes", "0"], "untrained model"),
        (["--checkpoints_total_limit", "0"], "checkpoints_total_limit"),
        (["--checkpoints_total_limit", "-1"], "checkpoints_total_limit"),
        (["--report_to", "a_tracker_that_is_not_installed"], "not installed"),
        *([(["--mixed_precision", "fp16"], "needs a CUDA GPU")] if not torch.cuda.is_available() else []),
        (["--train_data_dir", "folder"], "--dataset_name (fashion_mnist"),  # both: which one?
        (["--lpips_weight", "0.5"], "go together"),  # a weight without a network would be ignored
    ],
)
def test_train_vqvae_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        train_vqvae.parse_args(["--dataset_name", "fashion_mnist", *argv])
    assert message in capsys.readouterr().err


def test_train_vqvae_takes_the_image_shape_from_the_named_dataset_and_asks_for_a_folders(capsys):
    emoji = train_vqvae.parse_args(["--dataset_name", "emoji", "--output_dir", "x"])
    assert (emoji.resolution, emoji.num_channels) == (64, 3)
    assert (
        train_vqvae.parse_args(["--dataset_name", "emoji", "--resolution", "32", "--output_dir", "x"]).resolution == 32
    )
    # no default can know a user's images (28x28 grey would be silently wrong for most)
    with pytest.raises(SystemExit):
        train_vqvae.parse_args(["--train_data_dir", "my_images", "--num_channels", "3", "--output_dir", "x"])
    assert "--train_data_dir my_images needs --resolution (" in capsys.readouterr().err


# feature extractor and evaluation


def test_train_feature_extractor_writes_classifier_and_accuracy(tmp_path, fake_fashion_mnist):
    output_dir = tmp_path / "classifier"
    argv = ["--dataset_name", "fashion_mnist", "--output_dir", str(output_dir), "--num_epochs", "1",
            "--train_batch_size", "16", "--base_channels", "4"]  # fmt: skip
    args = train_feature_extractor.parse_args(argv)
    results = train_feature_extractor.main(args)
    correct = results["test_accuracy"] * 24  # the fake test split's 24 images
    assert abs(correct - round(correct)) < 1e-6 and 0 <= round(correct) <= 24
    assert json.loads((output_dir / "eval_results.json").read_text()) == results
    assert (output_dir / "diffusion_pytorch_model.safetensors").is_file()
    assert ImageClassifier.from_pretrained(output_dir).config.base_channels == 4


@pytest.fixture
def classifier_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQGEN_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    ImageClassifier(base_channels=4, feature_dim=8).save_pretrained(tmp_path / "classifier")
    return tmp_path / "classifier"


def test_evaluate_tokenizer(tmp_path, fake_fashion_mnist, classifier_dir):
    tokenizer_dir = tmp_path / "vqvae"
    train_vqvae.main(
        train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(tokenizer_dir), "--max_train_steps", "1"])
    )
    results = evaluate.main(
        evaluate.parse_args(
            [
                "--tokenizer",
                str(tokenizer_dir),
                "--feature_extractor",
                str(classifier_dir),
                "--output_dir",
                str(tmp_path / "eval"),
            ]
        )
    )
    metrics = results["metrics"]
    assert {"psnr", "ssim", "codebook_usage", "perplexity", "fid", "kid", "precision", "recall"} <= metrics.keys()
    assert metrics["num_samples"] == 24
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    # what was scored, named without this machine's paths (outside the working folder: by its name)
    assert saved["settings"]["tokenizer"] == tokenizer_dir.name and "torch" in saved["versions"]
    assert saved["command"].startswith("python ") and str(tmp_path) not in json.dumps(saved)
    assert (tmp_path / "eval" / "samples.png").is_file()


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw_float"])
def test_evaluate_images_npy(tmp_path, fake_fashion_mnist, classifier_dir, layout):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    if layout == "nhwc":
        images = images[..., None]
    elif layout == "nchw_float":
        images = (images[:, None] / 127.5 - 1).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    results = evaluate.main(
        evaluate.parse_args(
            [
                "--images_npy",
                str(tmp_path / "images.npy"),
                "--dataset_name",
                "fashion_mnist",
                "--feature_extractor",
                str(classifier_dir),
                "--output_dir",
                str(tmp_path / "eval"),
            ]
        )  # fmt: skip
    )
    assert results["metrics"]["num_samples"] == 10
    extractor = load_feature_extractor(str(classifier_dir))
    direct = score_images(evaluate.images_from_npy(str(tmp_path / "images.npy"), 10), extractor, "fashion_mnist")
    assert results["metrics"]["fid"] == pytest.approx(direct["fid"])  # the .npy is scored as the images it holds


def test_evaluate_memorisation_finds_copied_training_images(tmp_path, fake_fashion_mnist, classifier_dir):
    """Training images passed off as samples sit at distance 0 from the training set: every one is flagged."""
    from hf_vqgen import load_image_dataset

    train = load_image_dataset("fashion_mnist", split="train")
    copies = np.stack([np.asarray(train[i]["image"]) for i in range(6)])
    np.save(tmp_path / "copies.npy", copies)
    results = evaluate.main(
        evaluate.parse_args(
            [
                "--images_npy",
                str(tmp_path / "copies.npy"),
                "--dataset_name",
                "fashion_mnist",
                "--feature_extractor",
                str(classifier_dir),
                "--output_dir",
                str(tmp_path / "eval"),
                "--memorisation",
            ]
        )  # fmt: skip
    )
    memorisation = results["memorisation"]
    assert memorisation["nn_distance_median"] == pytest.approx(0.0, abs=1e-5)
    assert memorisation["share_closer_than_held_out_1pct"] == 1.0 and memorisation["nn_distance_median_held_out"] > 0
    assert (tmp_path / "eval" / "memorisation.png").is_file()


def test_evaluate_rejects_bad_npy(tmp_path, classifier_dir):
    np.save(tmp_path / "bad.npy", np.full((4, 1, 28, 28), 2.0, dtype=np.float32))
    args = evaluate.parse_args(["--images_npy", str(tmp_path / "bad.npy"), "--dataset_name", "fashion_mnist",
                                "--feature_extractor", str(classifier_dir),
                                "--output_dir", str(tmp_path / "eval")])  # fmt: skip
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        evaluate.main(args)


# the autoregressive chain


TINY_PRIOR_ARGS = ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--train_batch_size", "8", "--report_to", "none",
                   "--num_validation_images", "4", "--eval_batch_size", "8"]  # fmt: skip


@pytest.fixture
def tiny_tokenizer(tmp_path, fake_fashion_mnist):
    output_dir = tmp_path / "vqvae"
    train_vqvae.main(
        train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--max_train_steps", "2"])
    )
    return output_dir


def test_encode_dataset_writes_token_grids_with_tokenizer_identity(tmp_path, tiny_tokenizer):
    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(
            ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir), "--batch_size", "10"]
        )
    )
    tokens, identity = load_token_dataset(tokens_dir, VQVAEModel.from_pretrained(tiny_tokenizer))
    assert len(tokens["train"]) == 48 and len(tokens["test"]) == 24
    assert tokens["train"].features["token_ids"].feature.dtype == "int16"
    assert len(tokens["train"][0]["token_ids"]) == 14 * 14 and identity["num_vq_embeddings"] == 16
    # the same images through the tokenizer directly give the same ids, in order
    from hf_vqgen.evaluation.features import load_split_images

    direct = VQVAEModel.from_pretrained(tiny_tokenizer).encode_to_ids(
        load_split_images("fashion_mnist", "test", 28, 1)
    )
    assert torch.equal(torch.tensor(tokens["test"]["token_ids"]).long(), direct.flatten(1))


def test_hflip_train_adds_the_mirrored_train_images_only_and_the_prior_records_it(tmp_path, tiny_tokenizer):
    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(encode_dataset.parse_args(
        ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir), "--hflip_train"]
    ))  # fmt: skip
    vqvae = VQVAEModel.from_pretrained(tiny_tokenizer)
    tokens, identity = load_token_dataset(tokens_dir, vqvae)
    assert len(tokens["train"]) == 2 * 48 and len(tokens["test"]) == 24 and identity["source"]["hflip_train"]
    from hf_vqgen.evaluation.features import load_split_images

    mirrored = vqvae.encode_to_ids(load_split_images("fashion_mnist", "train", 28, 1).flip(-1))
    assert torch.equal(torch.tensor(tokens["train"]["token_ids"][48:]).long(), mirrored.flatten(1))
    assert tokens["train"]["label"][48:] == tokens["train"]["label"][:48]
    train_prior.main(train_prior.parse_args(
        TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--tokens_dir", str(tokens_dir),
                           "--output_dir", str(tmp_path / "ar"), "--max_train_steps", "1"]
    ))  # fmt: skip
    assert json.loads((tmp_path / "ar" / "model_card.json").read_text())["hyperparameters"]["tokens_hflip_train"]


@pytest.mark.parametrize("prior_type", ["ar", "diffusion"])
def test_class_tokens_per_column_give_one_token_per_label_column(tmp_path, tiny_tokenizer, prior_type):
    """A label combined from two columns (named "group / style", as combine_label_columns names it) goes to the prior
    as two tokens; the pipeline's API stays the combined label, guidance included."""
    import datasets

    from hf_vqgen.data import save_token_dataset

    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(encode_dataset.parse_args(
        ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir)]
    ))  # fmt: skip
    vqvae = VQVAEModel.from_pretrained(tiny_tokenizer)
    tokens, identity = load_token_dataset(tokens_dir, vqvae)
    combined = datasets.ClassLabel(names=[f"g{g} / s{s}" for g in range(5) for s in range(2)])
    combined_dir = tmp_path / "combined"
    save_token_dataset(tokens.cast_column("label", combined), combined_dir, identity)
    args = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--tokens_dir", str(combined_dir),
                              "--prior_type", prior_type, "--max_train_steps", "1"]  # fmt: skip
    run = tmp_path / "p"
    train_prior.main(train_prior.parse_args(
        args + ["--class_tokens", "per_column", "--output_dir", str(run), "--checkpointing_steps", "1"]
    ))  # fmt: skip
    pipeline = load_pipeline(run)
    assert pipeline.layout.class_factors == (5, 2) and pipeline.layout.num_class_positions == 2
    assert pipeline.id2label[3] == "g1 / s1"
    kwargs = {"num_inference_steps": 2} if prior_type == "diffusion" else {}
    out = pipeline(4, class_labels=[0, 3, 9, 4], guidance_scale=2.0, output_type="token_ids", **kwargs)
    assert out.token_ids.shape == (4, 14, 14)
    curve = tmp_path / "curve.json"  # a checkpoint rebuilt from the run's record has the same two class positions
    subprocess.run(
        [sys.executable, "benchmarks/score_checkpoints.py", "--run", str(run), "--base_pipeline", str(run),
         "--label", "two tokens", "--num_samples", "8", "--batch_size", "8", "--output", str(curve)],
        cwd=ROOT, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert [row["step"] for row in json.loads(curve.read_text())["rows"]] == [1]
    with pytest.raises(ValueError, match="per_column needs a label combined from several columns"):
        train_prior.main(train_prior.parse_args(
            TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--tokens_dir", str(tokens_dir),
                               "--class_tokens", "per_column", "--output_dir", str(tmp_path / "one")]
        ))  # fmt: skip


def test_token_dataset_from_another_tokenizer_is_refused(tmp_path, tiny_tokenizer):
    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir)])
    )
    other = VQVAEModel.from_pretrained(tiny_tokenizer)
    with torch.no_grad():
        other.quantize.embedding.weight.add_(1.0)
    with pytest.raises(ValueError, match="another tokenizer.*weights_sha256"):
        load_token_dataset(tokens_dir, other)


def test_a_bad_id_in_the_eval_split_stops_train_prior_before_training(tmp_path, tiny_tokenizer):
    """One out-of-codebook id in one eval row used to surface only after all training; now nothing trains."""
    import datasets

    from hf_vqgen.data import TOKENIZER_IDENTITY_FILE

    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir)])
    )
    tokens = datasets.load_from_disk(str(tokens_dir))
    rows = tokens["test"].to_dict()
    rows["token_ids"][5] = [999] + rows["token_ids"][5][1:]
    broken = tmp_path / "broken"
    datasets.DatasetDict(
        train=tokens["train"], test=datasets.Dataset.from_dict(rows, features=tokens["test"].features)
    ).save_to_disk(str(broken))
    (broken / TOKENIZER_IDENTITY_FILE).write_text((tokens_dir / TOKENIZER_IDENTITY_FILE).read_text())
    output_dir = tmp_path / "ar"
    args = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--tokens_dir", str(broken),
                              "--output_dir", str(output_dir), "--max_train_steps", "1"]  # fmt: skip
    with pytest.raises(ValueError, match="split 'test', row 5.*999"):
        train_prior.main(train_prior.parse_args(args))
    assert not (output_dir / "model_index.json").exists()


def test_train_prior_checks_its_output_folder_before_encoding(tmp_path, tiny_tokenizer, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(train_prior, "encode_image_dataset", lambda *a, **k: pytest.fail("encoded before checking"))
    args = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(blocked / "ar")]
    with pytest.raises(ValueError, match="--output_dir .* is not writable"):
        train_prior.main(train_prior.parse_args(args))


def test_ar_chain_end_to_end(tmp_path, tiny_tokenizer, classifier_dir):
    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(tokens_dir)])
    )
    output_dir = tmp_path / "ar"
    results = train_prior.main(
        train_prior.parse_args(
            TINY_PRIOR_ARGS
            + [
                "--vqvae_name_or_path",
                str(tiny_tokenizer),
                "--tokens_dir",
                str(tokens_dir),
                "--output_dir",
                str(output_dir),
                "--max_train_steps",
                "2",
                "--use_ema",
            ]
        )  # fmt: skip
    )
    assert results["train_steps"] == 2 and results["eval_bits_per_token"] > 0
    assert (output_dir / "model_index.json").is_file() and (output_dir / "prior" / "model.safetensors").is_file()
    assert (output_dir / "samples.png").is_file()
    (classifier_dir / "eval_results.json").write_text('{"label_columns": ["label"]}')  # as train_feature_extractor
    scored = evaluate.main(
        evaluate.parse_args(
            [
                "--pipeline",
                str(output_dir),
                "--num_samples",
                "6",
                "--batch_size",
                "4",
                "--guidance_scale",
                "2",
                "--feature_extractor",
                str(classifier_dir),
                "--output_dir",
                str(tmp_path / "eval"),
                "--update_card",
            ]
        )  # fmt: skip
    )
    assert scored["metrics"]["num_samples"] == 6 and scored["settings"]["num_classes"] == 10
    conditioning = scored["conditioning"]  # samples cycle classes 0..5; real test images carry theirs
    assert conditioning["label_columns"] == ["label"] and set(conditioning["samples"]) == {"accuracy"}
    assert all(0 <= conditioning[key]["accuracy"] <= 1 for key in ("samples", "real_images", "reconstructions"))
    assert "6 samples (guidance 2, temperature 1, seed 0)" in (output_dir / "README.md").read_text()
    assert scored["metrics"]["bits_per_image"] == pytest.approx(scored["metrics"]["bits_per_token"] * 14 * 14)
    written = sample.main(
        sample.parse_args(
            [
                "--pipeline",
                str(output_dir),
                "--output_dir",
                str(tmp_path / "samples"),
                "--samples_per_class",
                "2",
                "--num_completions",
                "3",
            ]
        )  # fmt: skip
    )
    assert written["grid"].is_file() and written["completions"].is_file()

    pipeline = VQGenPipeline.from_pretrained(output_dir)
    first = pipeline(
        batch_size=3, class_labels=[0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="pt"
    )
    again = VQGenPipeline.from_pretrained(output_dir)(
        batch_size=3, class_labels=[0, 1, 2], generator=torch.Generator().manual_seed(0), output_type="pt"
    )
    assert first.images.shape == (3, 1, 28, 28) and torch.equal(first.images, again.images)
    assert torch.equal(first.token_ids, again.token_ids)


def test_train_prior_encodes_images_once_when_no_tokens_given(tmp_path, tiny_tokenizer):
    output_dir = tmp_path / "ar"
    args = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(output_dir),
                              "--max_train_steps", "1", "--unconditional"]  # fmt: skip
    train_prior.main(train_prior.parse_args(args))
    assert (output_dir / "tokens" / "hf_vqgen_tokenizer.json").is_file()
    assert VQGenPipeline.from_pretrained(output_dir).prior.config.num_classes == 0


def test_tokens_cached_for_other_label_columns_are_refused(tmp_path, tiny_tokenizer):
    output_dir = tmp_path / "ar"
    args = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(output_dir),
                              "--max_train_steps", "1"]  # fmt: skip
    train_prior.main(train_prior.parse_args(args))
    identity_file = output_dir / "tokens" / "hf_vqgen_tokenizer.json"
    identity = json.loads(identity_file.read_text())
    assert identity["source"] == {"dataset_name": "fashion_mnist", "label_columns": ["label"]}
    identity["source"]["label_columns"] = ["label", "style"]  # as if an earlier run had encoded other labels
    identity_file.write_text(json.dumps(identity))
    with pytest.raises(ValueError, match="earlier run"):
        train_prior.main(train_prior.parse_args(args))


def test_train_prior_resumes_from_latest_checkpoint(tmp_path, tiny_tokenizer):
    output_dir = tmp_path / "ar"
    common = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(output_dir),
                                "--checkpointing_steps", "2"]  # fmt: skip
    train_prior.main(train_prior.parse_args(common + ["--max_train_steps", "2"]))
    assert (output_dir / "checkpoint-2").is_dir()
    results = train_prior.main(
        train_prior.parse_args(common + ["--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    )
    assert results["train_steps"] == 3


def test_a_resume_refuses_changed_model_or_data_settings_and_warns_on_optimisation_ones(
    tmp_path, tiny_tokenizer, caplog
):
    output_dir = tmp_path / "ar"
    common = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(output_dir),
                                "--checkpointing_steps", "2", "--max_train_steps", "2"]  # fmt: skip
    train_prior.main(train_prior.parse_args(common))
    resume = ["--resume_from_checkpoint", "latest", "--max_train_steps", "3"]
    with pytest.raises(ValueError, match="--n_embd: 16 in the run, 32 now.*--train_batch_size: 8 in the run, 4 now"):
        train_prior.main(train_prior.parse_args(common + resume + ["--n_embd", "32", "--train_batch_size", "4"]))
    with caplog.at_level("WARNING"):
        results = train_prior.main(train_prior.parse_args(common + resume + ["--learning_rate", "5e-4"]))
    assert results["train_steps"] == 3 and "--learning_rate 0.0005 (the run so far used 0.001)" in caplog.text


def test_a_fresh_run_refuses_a_folder_with_an_earlier_runs_checkpoints_and_writes_its_own_log(
    tmp_path, tiny_tokenizer, caplog
):
    output_dir = tmp_path / "ar"
    common = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--output_dir", str(output_dir),
                                "--max_train_steps", "2"]  # fmt: skip
    train_prior.main(train_prior.parse_args(common + ["--checkpointing_steps", "2"]))
    first_log = (output_dir / "logs" / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match=r"checkpoints of an earlier run \(checkpoint-2\).*--resume_from_checkpoint"):
        train_prior.main(train_prior.parse_args(common))
    shutil.rmtree(output_dir / "checkpoint-2")
    with caplog.at_level("WARNING"):
        train_prior.main(train_prior.parse_args(common))
    logs = sorted(path.name for path in (output_dir / "logs").glob("metrics*.jsonl"))
    assert len(logs) == 2 and "earlier run's log" in caplog.text
    # the earlier run's lines are kept apart, not continued by this run's
    kept = next(path for path in (output_dir / "logs").glob("metrics.*.jsonl"))
    assert kept.read_text() == first_log
    assert [record["step"] for record in read_metrics(output_dir / "logs")] == [1, 2]


@pytest.mark.parametrize("prior_type", ["ar", "diffusion"])
def test_train_prior_continues_a_finished_pipeline_as_a_new_leg(tmp_path, tiny_tokenizer, prior_type):
    first, second = tmp_path / "leg1", tmp_path / "leg2"
    common = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--prior_type", prior_type,
                                "--max_train_steps", "1"]  # fmt: skip
    train_prior.main(train_prior.parse_args(common + ["--output_dir", str(first)]))
    loaded = load_pipeline(first).prior_model
    # zero learning rate: the continued run's export must hold exactly the weights it started from
    results = train_prior.main(
        train_prior.parse_args(
            common
            + [
                "--output_dir",
                str(second),
                "--init_from",
                str(first),
                "--learning_rate",
                "0",
                "--dropout",
                "0.25",
            ]  # fmt: skip
        )
    )
    continued = load_pipeline(second).prior_model
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), continued.state_dict().values()))
    # the continued leg trains with its own --dropout, not the saved model's
    rates = [module.p for module in continued.modules() if isinstance(module, torch.nn.Dropout)]
    assert rates and set(rates) == {0.25}
    assert [leg["init_from"] is None for leg in results["training_legs"]] == [True, False]
    assert results["total_train_minutes"] == pytest.approx(
        sum(leg["train_minutes"] for leg in results["training_legs"])
    )
    assert "in 2 legs" in (second / "README.md").read_text()
    hyperparameters = json.loads((second / "model_card.json").read_text())["hyperparameters"]
    if prior_type == "ar":  # the card lists only the flags this kind reads
        assert "corruption" not in hyperparameters and "--corruption" not in (second / "README.md").read_text()
    else:
        assert hyperparameters["corruption"] == "absorbing"
    with pytest.raises(ValueError, match="--n_embd"):
        train_prior.main(train_prior.parse_args(
            common + ["--output_dir", str(tmp_path / "leg3"), "--init_from", str(first), "--n_embd", "64"]
        ))  # fmt: skip


@pytest.mark.parametrize(("corruption", "objective"), [("uniform", "original"), ("absorbing", "x0")])
def test_diffusion_chain_end_to_end(tmp_path, tiny_tokenizer, classifier_dir, corruption, objective):
    output_dir = tmp_path / "diffusion"
    results = train_prior.main(
        train_prior.parse_args(
            TINY_PRIOR_ARGS
            + [
                "--prior_type",
                "diffusion",
                "--corruption",
                corruption,
                "--objective",
                objective,
                "--num_train_timesteps",
                "10",
                "--num_inference_steps",
                "4",
                "--vqvae_name_or_path",
                str(tiny_tokenizer),
                "--output_dir",
                str(output_dir),
                "--max_train_steps",
                "2",
                "--validation_steps",
                "2",
            ]
        )  # fmt: skip
    )
    assert results["prior_type"] == "diffusion" and results["eval_bits_per_token"] > 0
    assert (output_dir / "denoiser" / "model.safetensors").is_file()
    assert (output_dir / "scheduler" / "scheduler_config.json").is_file()
    assert (output_dir / "samples.png").is_file() and (output_dir / "validation" / "step-2.png").is_file()
    pipeline = DiscreteDiffusionPipeline.from_pretrained(output_dir)
    assert pipeline.scheduler.config.corruption == corruption
    assert pipeline.layout.num_noise_levels == (10 if objective == "x0" else 0)

    scored = evaluate.main(
        evaluate.parse_args(
            [
                "--pipeline",
                str(output_dir),
                "--num_samples",
                "6",
                "--batch_size",
                "4",
                "--num_inference_steps",
                "3",
                "--feature_extractor",
                str(classifier_dir),
                "--output_dir",
                str(tmp_path / "eval"),
                "--update_card",
            ]
        )  # fmt: skip
    )
    assert (
        scored["metrics"]["num_samples"] == 6 and scored["settings"]["pipeline_class"] == "DiscreteDiffusionPipeline"
    )
    assert scored["settings"]["pipeline"] == output_dir.name  # the folder it scored, not the class
    assert "6 samples (3 steps, guidance 1, temperature 1, seed 0)" in (output_dir / "README.md").read_text()
    assert "bits_per_token" not in scored["metrics"]  # no exact likelihood for this prior
    written = sample.main(
        sample.parse_args(
            [
                "--pipeline",
                str(output_dir),
                "--output_dir",
                str(tmp_path / "samples"),
                "--samples_per_class",
                "2",
                "--num_completions",
                "3",
                "--num_inference_steps",
                "3",
                "--gif",
            ]
        )  # fmt: skip
    )
    assert all(written[name].is_file() for name in ("grid", "completions", "gif", "strip"))

    kwargs = {"batch_size": 3, "class_labels": [0, 1, 2], "num_inference_steps": 4, "output_type": "pt"}
    first = pipeline(generator=torch.Generator().manual_seed(0), **kwargs)
    again = DiscreteDiffusionPipeline.from_pretrained(output_dir)(generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(first.token_ids, again.token_ids) and torch.equal(first.images, again.images)


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--top_p", "0.9"], "top_p"),  # an autoregressive setting, on a diffusion pipeline
        (["--prefix_rows", "99"], "prefix_rows"),
        (["--prefix_rows", "-5"], "prefix_rows"),
    ],
)
def test_sample_refuses_flags_that_would_be_ignored(tmp_path, flags, match):
    from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion

    tiny_diffusion().save_pretrained(tmp_path / "pipeline")
    args = sample.parse_args(["--pipeline", str(tmp_path / "pipeline"), "--output_dir", str(tmp_path / "out"), *flags])
    with pytest.raises(ValueError, match=match):
        sample.main(args)


def _write_class_folder(root, classes=("cat", "dog"), per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def test_a_folder_trained_chain_records_the_folder_and_its_class_names(tmp_path):
    from hf_vqgen.demo.loading import load_demo_pipelines

    folder = _write_class_folder(tmp_path / "my_images")
    vqvae_args = [a for a in TINY_VQVAE_ARGS if a not in ("--dataset_name", "fashion_mnist")]
    train_vqvae.main(train_vqvae.parse_args(
        vqvae_args + ["--train_data_dir", str(folder), "--resolution", "28", "--num_channels", "1",
                      "--output_dir", str(tmp_path / "vqvae"), "--max_train_steps", "1"]
    ))  # fmt: skip
    # no --dataset_name anywhere below: every script reads what the tokenizer recorded
    train_prior.main(train_prior.parse_args(
        TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tmp_path / "vqvae"), "--output_dir", str(tmp_path / "ar"),
                           "--max_train_steps", "1"]
    ))  # fmt: skip
    pipeline = load_pipeline(tmp_path / "ar")
    assert pipeline.id2label == {0: "cat", 1: "dog"}
    card = json.loads((tmp_path / "ar" / "model_card.json").read_text())
    assert "fashion" not in json.dumps(card).lower()  # no default dataset leaks into the record
    assert "fashion" not in (tmp_path / "vqvae" / "README.md").read_text().lower()
    demo = load_demo_pipelines([str(tmp_path / "ar")])[0]
    assert demo.classes.names == ("cat", "dog")


def readme_own_images_commands() -> list[list[str]]:
    """The commands of the README's "Train on your own images" block, split into words."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("### Train on your own images", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split() for line in block.strip().splitlines()]


def test_the_readme_own_images_commands_run_on_a_tiny_folder(tmp_path, monkeypatch):
    """The README's commands as written (run from a folder holding `my_images/`), with tiny-size flags appended."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("apple", "pear"):
        (tmp_path / "my_images" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / "my_images" / name / f"{i}.png"
            )
    (tmp_path / "my_images" / "pear" / "._0.png").write_bytes(b"macOS resource fork")  # skipped, not choked on
    monkeypatch.chdir(tmp_path)
    tiny = {
        "train_vqvae.py": ["--block_out_channels", "8", "16", "--latent_channels", "8", "--norm_num_groups", "4",
                           "--vq_embed_dim", "4", "--num_vq_embeddings", "16", "--train_batch_size", "4",
                           "--max_train_steps", "2", "--report_to", "none"],
        "encode_dataset.py": [],
        "train_prior.py": TINY_PRIOR_ARGS + ["--max_train_steps", "2", "--train_batch_size", "4"],
        "sample.py": ["--samples_per_class", "2", "--num_completions", "2"],
    }  # fmt: skip
    scripts = {"train_vqvae.py": train_vqvae, "encode_dataset.py": encode_dataset, "train_prior.py": train_prior,
               "sample.py": sample}  # fmt: skip
    commands = readme_own_images_commands()
    assert [Path(words[1]).name for words in commands] == list(scripts)
    for words in commands:
        assert words[0] == "python"
        script = scripts[Path(words[1]).name]
        script.main(script.parse_args(words[2:] + tiny[Path(words[1]).name]))
    assert (tmp_path / "my-samples" / "samples.png").is_file()
    assert load_pipeline(tmp_path / "my-ar").id2label == {0: "apple", 1: "pear"}


def test_set_sampling_defaults_rewrites_the_folder_keeping_its_other_files(tmp_path):
    import set_sampling_defaults

    from .pipelines.test_pipeline_vqgen import tiny_pipeline as tiny_ar

    folder = tmp_path / "pipeline"
    tiny_ar().save_pretrained(folder)
    (folder / "samples.png").write_bytes(b"png")
    (folder / "test_images").mkdir()
    (folder / "test_images" / "a.png").write_bytes(b"png")
    set_sampling_defaults.main(
        set_sampling_defaults.parse_args(["--pipeline", str(folder), "temperature=0.8", "top_k=50"])
    )
    loaded = load_pipeline(folder)
    assert loaded.sampling_defaults["temperature"] == 0.8 and loaded.sampling_defaults["top_k"] == 50
    assert (folder / "samples.png").read_bytes() == b"png" and (folder / "test_images" / "a.png").is_file()
    with pytest.raises(ValueError, match="num_inference_steps"):
        set_sampling_defaults.main(
            set_sampling_defaults.parse_args(["--pipeline", str(folder), "num_inference_steps=8"])
        )


def test_set_sampling_defaults_saves_a_scheduler_setting_in_the_scheduler(tmp_path):
    """`choice_temperature=8` is the diffusion scheduler's config, not a call argument: saved there, as diffusers
    would (`from_config(config, choice_temperature=8)`), next to the call's defaults, and stated in the card."""
    import set_sampling_defaults

    from hf_vqgen.model_cards import CONTEXT_FILE

    from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion

    folder = tmp_path / "pipeline"
    tiny_diffusion().save_pretrained(folder)
    (folder / CONTEXT_FILE).write_text(json.dumps({"kind": "diffusion", "command": "train", "hyperparameters": {},
                                                   "facts": {}, "metrics": {}}))  # fmt: skip
    settings = ["--pipeline", str(folder), "guidance_scale=2", "choice_temperature=8"]
    set_sampling_defaults.main(set_sampling_defaults.parse_args(settings))
    loaded = load_pipeline(folder)
    assert loaded.scheduler.config.choice_temperature == 8 and loaded.sampling_defaults["guidance_scale"] == 2
    assert json.loads((folder / CONTEXT_FILE).read_text())["scheduler_settings"] == {"choice_temperature": 8}
    assert "scheduler is saved with `choice_temperature=8`" in (folder / "README.md").read_text()


def test_a_new_prior_kind_is_one_class(tmp_path, tiny_tokenizer, monkeypatch):
    """The README's claim: a kind registered in PRIOR_KINDS trains, exports and samples with no other change (here
    an autoregressive prior whose GPT-2 has untied input and output embeddings)."""
    from transformers import GPT2LMHeadModel

    from hf_vqgen.training import prior_kinds

    class UntiedAutoregressivePrior(prior_kinds.AutoregressivePrior):
        def build_model(self, layout):
            config = layout.gpt2_config(
                self.config.n_layer, self.config.n_head, self.config.n_embd, self.config.dropout
            )
            config.tie_word_embeddings = False
            return GPT2LMHeadModel(config)

    monkeypatch.setitem(prior_kinds.PRIOR_KINDS, "ar_untied", UntiedAutoregressivePrior)
    output_dir = tmp_path / "untied"
    results = train_prior.main(train_prior.parse_args(
        TINY_PRIOR_ARGS + ["--prior_type", "ar_untied", "--vqvae_name_or_path", str(tiny_tokenizer),
                           "--output_dir", str(output_dir), "--max_train_steps", "1"]
    ))  # fmt: skip
    assert results["prior_type"] == "ar_untied"
    pipeline = load_pipeline(output_dir)
    assert pipeline.prior.config.tie_word_embeddings is False
    sample.main(sample.parse_args(["--pipeline", str(output_dir), "--output_dir", str(tmp_path / "samples"),
                                   "--samples_per_class", "1", "--num_completions", "1"]))  # fmt: skip
    assert (tmp_path / "samples" / "samples.png").is_file()


@pytest.mark.parametrize("prior_type", ["ar", "diffusion"])
def test_score_checkpoints_scores_every_checkpoint_of_any_prior_kind(tmp_path, tiny_tokenizer, prior_type):
    """benchmarks/score_checkpoints.py rebuilds a checkpoint's model from the run's recorded config, whatever its kind."""
    run = tmp_path / "run"
    train_prior.main(train_prior.parse_args(
        TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tiny_tokenizer), "--prior_type", prior_type,
                           "--max_train_steps", "2", "--checkpointing_steps", "1", "--output_dir", str(run)]
    ))  # fmt: skip
    curve = tmp_path / "curve.json"
    subprocess.run(
        [sys.executable, "benchmarks/score_checkpoints.py", "--run", str(run), "--base_pipeline", str(run),
         "--label", prior_type, "--num_samples", "8", "--batch_size", "8", "--output", str(curve), "--final"],
        cwd=ROOT, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    rows = json.loads(curve.read_text())["rows"]
    assert [row["step"] for row in rows] == [1, 2, 2]  # both checkpoints, then the exported pipeline
    assert all(row["fashion_mnist_classifier"]["fid"] >= 0 for row in rows)
