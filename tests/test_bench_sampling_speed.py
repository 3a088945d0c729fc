"""benchmarks/bench_sampling_speed.py end to end on tiny saved pipelines (--smoke: batch sizes 1 and 2, 2 steps): every
sampler at every batch size has a positive latency and GFLOP/s, beside the matmul peak, the derived figures and the
provenance every results file carries."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion_pipeline
from .pipelines.test_pipeline_vqgen import tiny_pipeline as tiny_ar_pipeline


ROOT = Path(__file__).resolve().parents[1]


def test_smoke_run_reports_every_sampler_at_every_batch_size(tmp_path):
    tiny_ar_pipeline().save_pretrained(tmp_path / "ar")
    tiny_diffusion_pipeline().save_pretrained(tmp_path / "diffusion")
    results = tmp_path / "sampling_speed.json"
    argv = ["--ar_pipeline", tmp_path / "ar", "--diffusion_pipeline", tmp_path / "diffusion", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "benchmarks/bench_sampling_speed.py", *map(str, argv), "--smoke", "--results_file"]
    completed = subprocess.run(
        [*command, str(results)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr
    assert "matmul peak" in completed.stdout

    report = json.loads(results.read_text())
    assert set(report["samplers"]) == {"ar_kv_cache", "ar_recompute", "diffusion_2_steps"}
    assert report["priors"]["ar"]["num_tokens"] == 16 and report["samplers"]["diffusion_2_steps"]["steps"] == 2
    for name, sampler in report["samplers"].items():
        assert set(sampler["batch_sizes"]) == {"1", "2"}, name
        for row in sampler["batch_sizes"].values():
            assert row["latency_s"] > 0 and row["images_per_s"] > 0 and row["gflop_per_s"] > 0, (name, row)
            assert 0 < row["fraction_of_matmul_peak"] and row["peak_rss_mib"] > 0, (name, row)
    assert report["matmul_peak"]["gflop_per_s"] > 0
    assert set(report["kv_cache_speedup"]) == {"1", "2"}
    assert set(report["ar_over_diffusion_latency_batch1"]) == {"2"}
    assert report["crossover_batch_size"]["2"] in (1, 2, "none in range")
    assert set(report["scored"]) == {"ar", "diffusion"} and not report["scored"]["ar"].startswith("/")
    assert "bench_sampling_speed.py" in report["command"] and report["settings"]["smoke"] is True


@pytest.mark.slow  # a second process start: as long again as the smoke run
def test_recompute_past_its_budget_is_skipped_not_run(tmp_path):
    tiny_ar_pipeline().save_pretrained(tmp_path / "ar")
    results = tmp_path / "sampling_speed.json"
    argv = ["--ar_pipeline", tmp_path / "ar", "--smoke", "--max_recompute_seconds", "1e-9", "--results_file", results]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "benchmarks/bench_sampling_speed.py", *map(str, argv)]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(results.read_text())
    assert all("skipped" in row for row in report["samplers"]["ar_recompute"]["batch_sizes"].values())
    assert "latency_s" in report["samplers"]["ar_kv_cache"]["batch_sizes"]["1"]
    assert report["kv_cache_speedup"] == {} and report["scored"] == {"ar": report["scored"]["ar"]}
