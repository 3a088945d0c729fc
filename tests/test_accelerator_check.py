"""benchmarks/accelerator_check.py end to end on CPU (--smoke: the emoji recipes' models shrunk to 1-layer priors over
4x4 grids, 3 steps, sampling at batch 1 and 2), so the GPU check cannot rot: every section is there, measured or
skipped with its reason, beside the provenance every results file carries."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "benchmarks/accelerator_check.py"
MODELS = {"tokenizer", "ar", "diffusion", "ar_large", "diffusion_large"}


def run_check(results, *extra) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, on any machine
    command = [sys.executable, SCRIPT, "--smoke", "--results_file", str(results), *extra]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-5000:]
    assert "| model | variant |" in completed.stdout and results.with_suffix(".md").is_file()
    return json.loads(results.read_text())


def test_smoke_run_reports_every_section(tmp_path):
    report = run_check(tmp_path / "check.json")

    assert report["environment"]["device"] == "cpu" and report["environment"]["torch"]
    assert report["environment"]["num_gpus"] == 0 and report["environment"]["mixed_precision"] == "bf16"
    assert set(report["training"]) == MODELS
    for name, variants in report["training"].items():
        eager, compiled = variants["eager"], variants["compile"]
        assert eager["steps"] == 3 and eager["images_per_s"] > 0 and eager["peak_memory_mib"] > 0, name
        assert eager["final_loss"] > 0 and "error" not in eager, name
        assert "compiling takes minutes" in compiled["skipped"], name
        if name != "tokenizer":
            assert eager["tokens_per_s"] == pytest.approx(eager["images_per_s"] * (2 + 16)), name
    assert report["models"]["ar"]["grid"] == [4, 4] and report["models"]["ar"]["num_classes"] == 30
    assert report["training"]["ar_large"]["eager"]["parameters"] > report["training"]["ar"]["eager"]["parameters"]

    sampling = report["sampling"]
    for name in ("ar_kv_cache", "diffusion_2_steps", "diffusion_4_steps"):
        assert set(sampling[name]["batch_sizes"]) == {"1", "2"}, name
        for row in sampling[name]["batch_sizes"].values():
            assert row["latency_s"] > 0 and row["images_per_s"] > 0, (name, row)
    assert "skipped" in sampling["ar_static_cache_compile"]
    assert set(report["crossover_batch_size"]["ar_kv_cache"]) == {"2", "4"}
    assert all(v in (1, 2, "none in range") for v in report["crossover_batch_size"]["ar_kv_cache"].values())
    assert "needs 2" in report["multi_gpu"]["skipped"]

    assert report["scored"] == {
        "tokenizer": "examples/recipes/vqvae_emoji.args",
        "ar": "examples/recipes/ar_emoji.args",
        "diffusion": "examples/recipes/diffusion_emoji.args",
    }
    assert "accelerator_check.py" in report["command"] and "--smoke" in report["command"]
    assert report["settings"]["smoke"] is True and report["settings"]["train_steps"] == 3


def test_smoke_refuses_to_write_into_the_results_folder():
    command = [sys.executable, SCRIPT, "--smoke", "--results_file", "benchmarks/results/x.json"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 2 and "outside benchmarks/results" in completed.stderr


@pytest.mark.slow  # two more processes (gloo on CPU): the 2-process comparison's code path, as on 2 GPUs
def test_two_process_section_compares_with_one_process(tmp_path):
    multi = run_check(tmp_path / "check.json", "--smoke_multiprocess")["multi_gpu"]
    assert multi["num_processes"] == 2 and "same global batch" in multi["rule"]
    for name in ("ar", "diffusion"):
        assert multi[name]["two_processes"]["steps"] == multi[name]["one_process"]["steps"] == 3, name
        assert multi[name]["throughput_ratio"] > 0 and multi[name]["loss_equal"] is True, (name, multi[name])
