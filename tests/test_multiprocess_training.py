"""The example scripts under `accelerate launch` with 2 CPU processes (gloo), as documented in the README:
`ACCELERATE_USE_CPU=1 accelerate launch --config_file examples/configs/cpu_2proc.yaml SCRIPT ...`."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from hf_vqgen.data import load_token_dataset
from hf_vqgen.training.tracking import read_metrics

from .test_examples import TINY_PRIOR_ARGS, TINY_VQVAE_ARGS


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: str, argv: list[str], num_processes: int) -> subprocess.CompletedProcess:
    """`accelerate launch` with the shipped 2-process CPU config (or plain python for one process)."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "ACCELERATE_USE_CPU": "1"}
    path = str(ROOT / "examples" / script)
    if num_processes == 1:
        command = [sys.executable, path, *argv]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_2proc.yaml"),
                   "--main_process_port", str(_free_port()), path, *argv]  # fmt: skip
    # a session of its own, so that a hung run is killed with every process it started (torchrun's workers too)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(process.pid).children(
            recursive=True
        ):  # torchrun's workers have sessions of their own
            child.kill()
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{script} did not finish in 240 s:\n{stderr[-4000:]}")
    assert process.returncode == 0, stderr[-4000:]
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def tokenizer_and_tokens(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    from .conftest import write_fake_fashion_mnist

    data = write_fake_fashion_mnist(folder / "fashion-mnist")
    os.environ["HF_VQGEN_FASHION_MNIST_DIR"] = str(data)
    try:
        launch(
            "train_vqvae.py", TINY_VQVAE_ARGS + ["--output_dir", str(folder / "vqvae"), "--max_train_steps", "2"], 1
        )
        yield folder
    finally:
        os.environ.pop("HF_VQGEN_FASHION_MNIST_DIR", None)


def test_two_processes_follow_the_loss_curve_of_one_with_the_whole_batch(tokenizer_and_tokens, tmp_path):
    """2 processes x batch 4 == 1 process x batch 8: DDP averages the gradients, the seedable sampler deals the
    same examples, so the losses agree up to float summation order."""
    common = TINY_PRIOR_ARGS + ["--vqvae_name_or_path", str(tokenizer_and_tokens / "vqvae"), "--max_train_steps", "4",
                                "--class_dropout", "0", "--dropout", "0", "--checkpointing_steps", "2",
                                "--learning_rate", "3e-3", "--lr_warmup_steps", "1"]  # fmt: skip
    os.environ["HF_VQGEN_FASHION_MNIST_DIR"] = str(tokenizer_and_tokens / "fashion-mnist")
    try:
        launch("train_prior.py", common + ["--output_dir", str(tmp_path / "one"), "--train_batch_size", "8"], 1)
        launch("train_prior.py", common + ["--output_dir", str(tmp_path / "two"), "--train_batch_size", "4"], 2)
    finally:
        os.environ.pop("HF_VQGEN_FASHION_MNIST_DIR", None)
    one, two = read_metrics(tmp_path / "one" / "logs"), read_metrics(tmp_path / "two" / "logs")
    assert [r["step"] for r in two] == [1, 2, 3, 4]  # the main process alone logs: each step once
    losses_one, losses_two = torch.tensor([r["loss"] for r in one]), torch.tensor([r["loss"] for r in two])
    assert losses_one[0] > losses_one[-1]  # it does learn
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-4, atol=1e-5)

    two_dir = tmp_path / "two"
    assert sorted(p.name for p in two_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert sorted(p.name for p in (two_dir / "checkpoint-4").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]  # fmt: skip  (one RNG state per rank, everything else written once by the main process)
    assert len(list(two_dir.rglob("model.safetensors"))) == 3  # the final prior + one per checkpoint
    results = json.loads((two_dir / "eval_results.json").read_text())
    assert results["train_steps"] == 4


def test_encoding_with_two_processes_gives_the_same_token_dataset(tokenizer_and_tokens, tmp_path):
    os.environ["HF_VQGEN_FASHION_MNIST_DIR"] = str(tokenizer_and_tokens / "fashion-mnist")
    try:
        for count in (1, 2):
            argv = ["--vqvae_name_or_path", str(tokenizer_and_tokens / "vqvae"), "--output_dir",
                    str(tmp_path / f"tokens-{count}"), "--batch_size", "5"]  # fmt: skip
            launch("encode_dataset.py", argv, count)
    finally:
        os.environ.pop("HF_VQGEN_FASHION_MNIST_DIR", None)
    from hf_vqgen import VQVAEModel

    vqvae = VQVAEModel.from_pretrained(tokenizer_and_tokens / "vqvae")
    single, _ = load_token_dataset(tmp_path / "tokens-1", vqvae)
    double, _ = load_token_dataset(tmp_path / "tokens-2", vqvae)
    for split in ("train", "test"):
        assert single[split].num_rows == double[split].num_rows  # no duplicated padding rows
        assert single[split]["token_ids"] == double[split]["token_ids"]
        assert single[split]["label"] == double[split]["label"]


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_accelerate_configs_are_valid(config):
    from accelerate.commands.config.config_args import ClusterConfig

    loaded = ClusterConfig.from_yaml_file(config)
    raw = yaml.safe_load(config.read_text())
    # accelerate reads back what the file says (an unknown key or value fails to load above)
    assert loaded.distributed_type.value == raw["distributed_type"] and loaded.num_processes == raw["num_processes"]
    assert loaded.num_processes >= 2 or raw["distributed_type"] == "NO"  # these configs are for several processes
