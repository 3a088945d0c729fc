"""The accelerator paths, checked on CPU with tiny configs: bf16 mixed precision for every training script (losses
finite, checkpoints and saved models load) and `--compile` (the compiled model trains and is saved as the plain
module)."""

import json
import math

import pytest
import torch

from hf_vqgen import VQVAEModel, load_pipeline

from .test_examples import TINY_PRIOR_ARGS, TINY_VQVAE_ARGS, encode_dataset, train_prior, train_vqvae


def reset_accelerator_state() -> None:
    """Accelerate keeps one process-wide state: a run in another precision earlier in the process would make
    `Accelerator(mixed_precision="bf16")` refuse to start (as it would in a user's notebook)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    reset_accelerator_state()
    yield
    reset_accelerator_state()


@pytest.fixture
def tokens(tmp_path, fake_fashion_mnist):
    tokenizer = tmp_path / "vqvae"
    train_vqvae.main(
        train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(tokenizer), "--max_train_steps", "2"])
    )
    tokens_dir = tmp_path / "tokens"
    encode_dataset.main(
        encode_dataset.parse_args(["--vqvae_name_or_path", str(tokenizer), "--output_dir", str(tokens_dir)])
    )
    reset_accelerator_state()  # the tokenizer trained in full precision
    return tokenizer, tokens_dir


def _logged_losses(output_dir) -> list[float]:
    lines = (output_dir / "logs" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def test_tokenizer_trains_in_bf16_and_resumes(tmp_path, fake_fashion_mnist):
    output_dir = tmp_path / "vqvae-bf16"
    common = TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--mixed_precision", "bf16", "--checkpointing_steps",
                                "2"]  # fmt: skip
    train_vqvae.main(train_vqvae.parse_args(common + ["--max_train_steps", "2"]))
    results = train_vqvae.main(
        train_vqvae.parse_args(common + ["--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    )
    assert results["train_steps"] == 3 and math.isfinite(results["psnr"])
    assert all(math.isfinite(loss) for loss in _logged_losses(output_dir))
    model = VQVAEModel.from_pretrained(output_dir)
    assert model.dtype == torch.float32  # mixed precision computes in bf16; the weights stay float32


@pytest.mark.parametrize("prior_type", ["ar", "diffusion"])
def test_priors_train_in_bf16_and_resume(tmp_path, tokens, prior_type):
    tokenizer, tokens_dir = tokens
    output_dir = tmp_path / f"{prior_type}-bf16"
    extra = ["--num_train_timesteps", "10", "--num_inference_steps", "2"] if prior_type == "diffusion" else []
    common = TINY_PRIOR_ARGS + extra + ["--prior_type", prior_type, "--vqvae_name_or_path", str(tokenizer),
                                        "--tokens_dir", str(tokens_dir), "--output_dir", str(output_dir),
                                        "--mixed_precision", "bf16", "--checkpointing_steps", "2"]  # fmt: skip
    train_prior.main(train_prior.parse_args(common + ["--max_train_steps", "2"]))
    results = train_prior.main(
        train_prior.parse_args(common + ["--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    )
    assert results["train_steps"] == 3 and math.isfinite(results["eval_bits_per_token"])
    assert all(math.isfinite(loss) for loss in _logged_losses(output_dir))
    pipeline = load_pipeline(output_dir)
    assert pipeline(
        batch_size=1, output_type="token_ids", **({"num_inference_steps": 2} if extra else {})
    ).token_ids.numel()


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_prior_trains_and_saves_the_plain_model(tmp_path, tokens, backend):
    """aot_eager runs Dynamo's capture and AOTAutograd without generating code (seconds on CPU); inductor, which
    generates C++ here, takes minutes and runs with `make test-slow`."""
    tokenizer, tokens_dir = tokens
    output_dir = tmp_path / "ar-compiled"
    argv = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tokenizer), "--tokens_dir", str(tokens_dir), "--output_dir",
                              str(output_dir), "--max_train_steps", "2", "--compile", "--compile_backend", backend]  # fmt: skip
    results = train_prior.main(train_prior.parse_args(argv))
    assert results["train_steps"] == 2 and math.isfinite(results["eval_bits_per_token"])
    weights = json.loads((output_dir / "prior" / "config.json").read_text())
    assert weights["architectures"] == ["GPT2LMHeadModel"]  # not an OptimizedModule wrapper
    pipeline = load_pipeline(output_dir)
    assert not any(key.startswith("_orig_mod") for key in pipeline.prior.state_dict())


def test_compiled_tokenizer_and_diffusion_prior_train_and_save_plain_models(tmp_path, tokens, fake_fashion_mnist):
    """The README's "--compile works in every training script": the tokenizer and the diffusion prior too (aot_eager,
    no code generation)."""
    compile_flags = ["--compile", "--compile_backend", "aot_eager", "--max_train_steps", "2"]
    train_vqvae.main(
        train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(tmp_path / "vqvae")] + compile_flags)
    )
    assert not any(key.startswith("_orig_mod") for key in VQVAEModel.from_pretrained(tmp_path / "vqvae").state_dict())
    reset_accelerator_state()
    tokenizer, tokens_dir = tokens
    argv = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tokenizer), "--tokens_dir", str(tokens_dir), "--output_dir",
                              str(tmp_path / "diffusion"), "--prior_type", "diffusion", *compile_flags]  # fmt: skip
    results = train_prior.main(train_prior.parse_args(argv))
    assert results["train_steps"] == 2 and math.isfinite(results["eval_bits_per_token"])
    assert not any(key.startswith("_orig_mod") for key in load_pipeline(tmp_path / "diffusion").denoiser.state_dict())
