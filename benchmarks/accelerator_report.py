"""The accelerator check's tables: `markdown(report)` renders what benchmarks/accelerator_check.py wrote
(accelerator_check.json -> .md)."""

from __future__ import annotations


def _cells(row: dict, keys: tuple[str, ...]) -> str:
    values = [row.get(key) for key in keys]
    return " | ".join(f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v) for v in values)


def _reason(row: dict) -> str:
    return row.get("skipped") or row.get("error") or ""


def markdown(report: dict) -> str:
    env, lines = report["environment"], []
    device = f"{env['gpu_name'] or env['device']} x{max(env['num_gpus'], 1)}"
    versions = f"torch {env['torch']}, CUDA {env['cuda']}, {env['mixed_precision']}, {report['elapsed_s']:.0f}s"
    lines.append(f"## accelerator check: {device}, {versions}\n")
    lines += ["| model | variant | steps | images/s | tokens/s | step ms | peak MiB | warm-up s | loss first, last |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = ("steps", "images_per_s", "tokens_per_s", "step_ms", "peak_memory_mib", "warmup_s")
    for name, variants in report["training"].items():
        for variant, row in variants.items():
            if "images_per_s" in row:
                loss = f"{row['first_loss']:.3f}, {row['final_loss']:.3f}"
                lines.append(f"| {name} | {variant} | {_cells(row, keys)} | {loss} |")
            else:
                lines.append(f"| {name} | {variant} | {row.get('steps', '')} | {_reason(row) or row.get('stopped')} |")
    lines += [f"\nSampling ({report['sampling']['dtype']} weights, token ids only):\n",
              "| sampler | batch | latency s | images/s | peak MiB | warm-up call s |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, sampler in report["sampling"].items():
        if isinstance(sampler, dict) and "batch_sizes" not in sampler:
            lines.append(f"| {name} | | {_reason(sampler)} |")
        for batch, row in sampler.get("batch_sizes", {}).items() if isinstance(sampler, dict) else ():
            keys = ("latency_s", "images_per_s", "peak_memory_mib", "warmup_call_s")
            lines.append(f"| {name} | {batch} | {_cells(row, keys) if 'latency_s' in row else _reason(row)} |")
    for ar, steps in report["crossover_batch_size"].items():
        lines.append(
            f"\nCrossover batch size, {ar} vs diffusion: " + ", ".join(f"{k} steps: {v}" for k, v in steps.items())
        )
    multi = report["multi_gpu"]
    lines.append(f"\n2 processes: {_reason(multi) or multi['rule']}")
    for name in ("ar", "diffusion") if "rule" in multi else ():
        row = multi[name]
        if "throughput_ratio" in row:
            lines.append(f"- {name}: throughput x{row['throughput_ratio']:.2f}, loss difference "
                         f"{row['loss_difference']:.4f}, equal: {row['loss_equal']}")  # fmt: skip
        else:
            lines.append(f"- {name}: {_reason(row)}")
    return "\n".join(lines)
