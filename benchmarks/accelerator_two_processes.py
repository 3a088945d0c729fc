"""The accelerator check's 2-process section: the AR and diffusion prior steps again under `accelerate launch
--multi_gpu --num_processes 2` (the check's own `--worker` mode), compared with the 1-process runs (`MULTI_GPU_RULE`).
Without CUDA (`--smoke_multiprocess`) the same code path runs on CPU with gloo."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerator_workloads import Budget, build_workloads, guarded, log, release, train_run
from common import ROOT, relative


CHECK = Path(__file__).with_name("accelerator_check.py")  # its --worker mode is the worker
MULTI_GPU_RESERVE_S = 60  # process start-up, process group, two runs
LOSS_TOLERANCE = (0.1, 0.05)  # nats, relative
MULTI_GPU_RULE = (
    "the AR and diffusion prior steps under `accelerate launch --multi_gpu --num_processes 2` with the same global "
    "batch (the recipe's --train_batch_size split over the processes), initial weights and batches as 1 process; "
    "each process draws its own class dropout and corruption, so the losses agree statistically, not bitwise: equal "
    "when both ran the same steps and the mean loss of the last 10 steps is within max({:g} nats, {:.0%}) of 1 "
    "process's; throughput_ratio = 2-process images/s / 1-process images/s"
).format(*LOSS_TOLERANCE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_workers(args, budget: Budget) -> dict:
    """accelerator_check.py's `--worker` mode under `accelerate launch` with 2 processes: what its main process wrote."""
    seconds = max(budget.left(), 1.0)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "worker.json"
        launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
                  args.mixed_precision, "--dynamo_backend", "no", "--main_process_port", str(free_port())]  # fmt: skip
        forwarded = ["--worker", "--worker_output", str(output), "--max_seconds", f"{seconds:.0f}"]
        names = ("seed", "train_steps", "warmup_steps", "mixed_precision", "num_classes", "tokenizer_recipe")
        for name in (*names, "ar_recipe", "diffusion_recipe"):
            forwarded += [f"--{name}", str(getattr(args, name))]
        forwarded += ["--smoke", "--results_file", str(Path(folder) / "unused.json")] if args.smoke else []
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, relative(CHECK), *forwarded]
        log("$ accelerate launch " + " ".join(command[3:]))
        # without CUDA (--smoke_multiprocess): gloo on CPU, the same code path
        env = os.environ | ({} if torch.cuda.is_available() else {"ACCELERATE_USE_CPU": "1"})
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        try:
            code = process.wait(timeout=seconds + 60)  # the workers stop at the deadline; this bounds start-up
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the launcher and the workers it started
            process.wait()
            return {"skipped": f"the 2-process run outlived --max_seconds {args.max_seconds:g}"}
        if code != 0 or not output.is_file():
            return {"error": f"accelerate launch exited with status {code} (its output is above)"}
        return json.loads(output.read_text())


def compare_processes(one: dict, two: dict) -> dict:
    """2-process vs 1-process figures of one prior (`MULTI_GPU_RULE`)."""
    if "images_per_s" not in one or "images_per_s" not in two:
        return {"skipped": "no steady-state figures to compare", "one_process": one, "two_processes": two}
    difference = abs(two["final_loss"] - one["final_loss"])
    tolerance = max(LOSS_TOLERANCE[0], LOSS_TOLERANCE[1] * abs(one["final_loss"]))
    return {
        "one_process": {key: one[key] for key in ("steps", "images_per_s", "final_loss", "peak_memory_mib")},
        "two_processes": {key: two[key] for key in ("steps", "images_per_s", "final_loss", "peak_memory_mib")},
        "throughput_ratio": two["images_per_s"] / one["images_per_s"],
        "loss_difference": difference,
        "loss_equal": difference <= tolerance and one["steps"] == two["steps"],
    }


def multi_gpu_section(args, training: dict, budget: Budget) -> dict:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2 and not (args.smoke_multiprocess and count == 0):
        return {"skipped": f"{count} CUDA device(s): needs 2"}
    if budget.skip(0 if args.smoke else MULTI_GPU_RESERVE_S):
        return budget.skip(MULTI_GPU_RESERVE_S)
    worker = launch_workers(args, budget)
    if "rows" not in worker:
        return worker
    section = {"rule": MULTI_GPU_RULE, "num_processes": worker["num_processes"]}
    for name, two in worker["rows"].items():
        section[name] = compare_processes(training[name].get("eager", {}), two) if "error" not in two else two
    return section


def worker(args) -> None:
    """One `accelerate launch` process: the AR and diffusion prior steps; the main process writes them."""
    budget, accelerator = Budget(args.max_seconds), Accelerator(mixed_precision=args.mixed_precision)
    built, _ = build_workloads(args, accelerator.device, ("ar", "diffusion"))
    rows = {}
    for name, workload in built.items():
        what = f"[process {accelerator.process_index}] training {name}"
        rows[name] = guarded(what, lambda workload=workload: train_run(accelerator, workload, args, False, budget))
        release(accelerator)
    if accelerator.is_main_process:
        Path(args.worker_output).write_text(json.dumps({"num_processes": accelerator.num_processes, "rows": rows}))
    accelerator.wait_for_everyone()
    accelerator.end_training()
