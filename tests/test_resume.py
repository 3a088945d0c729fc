"""A run killed with SIGKILL (in the middle of writing a checkpoint) and resumed with `--resume_from_checkpoint
latest` ends with the same weights, bit for bit, as an uninterrupted run of the same steps (CPU, fixed seed)."""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .test_examples import TINY_PRIOR_ARGS, TINY_VQVAE_ARGS


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Runs an example script; at step KILL_AT it starts the checkpoint save, writes part of it, and dies by SIGKILL.
RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {examples!r})
    import {script} as script
    kill_at = int(os.environ.get("KILL_AT", "0"))
    original_save = script.save_checkpoint

    def save_checkpoint(accelerator, output_dir, step, total_limit):
        if step == kill_at:
            accelerator.save_state(str(Path(output_dir) / f".partial-checkpoint-{{step}}"))
            os.kill(os.getpid(), signal.SIGKILL)
        return original_save(accelerator, output_dir, step, total_limit)

    script.save_checkpoint = save_checkpoint
    script.main(script.parse_args(sys.argv[1:]))
    """
)


def run_script(script: str, argv: list[str], kill_at: int = 0) -> subprocess.CompletedProcess:
    env = os.environ | {"KILL_AT": str(kill_at), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    code = RUNNER.format(examples=str(EXAMPLES), script=script)
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300)


def kill_and_resume(tmp_path, script: str, argv: list[str], weights: str) -> None:
    common = argv + ["--max_train_steps", "6", "--checkpointing_steps", "2", "--validation_steps", "100"]
    reference = run_script(script, common + ["--output_dir", str(tmp_path / "uninterrupted")])
    assert reference.returncode == 0, reference.stderr[-3000:]

    interrupted = tmp_path / "interrupted"
    killed = run_script(script, common + ["--output_dir", str(interrupted)], kill_at=4)
    assert killed.returncode == -9  # SIGKILL
    assert (interrupted / "checkpoint-2").is_dir() and (interrupted / ".partial-checkpoint-4").is_dir()
    assert not (interrupted / "checkpoint-4").exists() and not (interrupted / weights).exists()

    resumed = run_script(script, common + ["--output_dir", str(interrupted), "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stderr and "checkpoint-2" in resumed.stderr
    expected, actual = load_file(tmp_path / "uninterrupted" / weights), load_file(interrupted / weights)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_tokenizer_training_resumes_bitwise_after_sigkill(tmp_path, fake_fashion_mnist):
    kill_and_resume(tmp_path, "train_vqvae", TINY_VQVAE_ARGS, "diffusion_pytorch_model.safetensors")


@pytest.fixture
def tiny_tokenizer_dir(tmp_path, fake_fashion_mnist):
    sys.path.insert(0, str(EXAMPLES))
    import train_vqvae

    output_dir = tmp_path / "vqvae"
    train_vqvae.main(
        train_vqvae.parse_args(TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--max_train_steps", "2"])
    )
    return output_dir


@pytest.mark.parametrize(
    ("prior_args", "weights"),
    [
        (["--prior_type", "ar", "--use_ema"], "prior/model.safetensors"),
        (["--prior_type", "ar", "--class_balance", "1"], "prior/model.safetensors"),
        (["--prior_type", "diffusion", "--num_train_timesteps", "10", "--num_inference_steps", "2"],
         "denoiser/model.safetensors"),
    ],
)  # fmt: skip
def test_prior_training_resumes_bitwise_after_sigkill(tmp_path, tiny_tokenizer_dir, prior_args, weights):
    argv = TINY_PRIOR_ARGS + prior_args + ["--vqvae_name_or_path", str(tiny_tokenizer_dir), "--dropout", "0.1"]
    kill_and_resume(tmp_path, "train_prior", argv, weights)


def test_corrupt_latest_checkpoint_is_skipped_for_the_previous_one(tmp_path, fake_fashion_mnist, caplog):
    sys.path.insert(0, str(EXAMPLES))
    import train_vqvae

    caplog.set_level(logging.INFO)
    output_dir = tmp_path / "vqvae"
    common = TINY_VQVAE_ARGS + ["--output_dir", str(output_dir), "--checkpointing_steps", "2"]
    train_vqvae.main(train_vqvae.parse_args(common + ["--max_train_steps", "2"]))
    corrupt = output_dir / "checkpoint-3"
    corrupt.mkdir()
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    results = train_vqvae.main(
        train_vqvae.parse_args(common + ["--max_train_steps", "4", "--resume_from_checkpoint", "latest"])
    )
    assert results["train_steps"] == 4
    assert "Skipping the unreadable checkpoint" in caplog.text and "checkpoint-3" in caplog.text
    assert "Resumed from" in caplog.text and "checkpoint-2" in caplog.text
