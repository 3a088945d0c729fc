"""Every committed benchmark result names what it scored, with which settings, by which command, and the results
README is what benchmarks/report.py renders from them (no model, no `runs/` folder needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RESULT_FILES = sorted(path for path in RESULTS.rglob("*.json") if "runs" not in path.relative_to(RESULTS).parts)
# what a result may name as `scored`: a repo-relative path, a repo id or dataset name, or (for a model the benchmark
# trained and did not keep) words saying so; a list or a {role: path} dict of those for a benchmark scoring several
SCORED_TYPES = (str, list, dict)


def provenance_problems(report: dict) -> list[str]:
    """What a results file lacks: `scored` (what it scored), `settings` (a dict), `command` (how it was made)."""
    problems = []
    scored = report.get("scored")
    if not isinstance(scored, SCORED_TYPES) or not scored:
        problems.append("no `scored`: the path (repo-relative) or repo id of what it scored")
    else:
        names = scored.values() if isinstance(scored, dict) else scored if isinstance(scored, list) else [scored]
        for name in names:
            if not isinstance(name, str) or not name or name.startswith(("/", "~")) or ".." in Path(name).parts:
                problems.append(f"`scored` entry {name!r} is not a repo-relative path, a repo id or a description")
    if not isinstance(report.get("settings"), dict) or not report["settings"]:
        problems.append("no `settings`: the arguments / sampling settings it was measured with")
    command = report.get("command")
    if not isinstance(command, str) or "python " not in command:
        problems.append("no `command`: the command line that produced it")
    return problems


def test_there_are_results_to_check():
    assert len(RESULT_FILES) > 5


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.name)
def test_result_names_what_it_scored_its_settings_and_command(path):
    problems = provenance_problems(json.loads(path.read_text()))
    assert not problems, f"{path.relative_to(ROOT)}: {'; '.join(problems)}"


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.name)
def test_local_paths_scored_are_repo_relative(path):
    scored = json.loads(path.read_text())["scored"]
    names = scored.values() if isinstance(scored, dict) else scored if isinstance(scored, list) else [scored]
    for name in names:
        if name.startswith(("benchmarks/", "pretrained/", "outputs/")):  # local folders: runs/ is not committed
            assert name.startswith("benchmarks/results/runs/") or (ROOT / name).exists(), name


@pytest.mark.parametrize(
    "report, missing",
    [
        ({"settings": {"seed": 0}, "command": "python benchmarks/x.py"}, "scored"),
        ({"scored": "benchmarks/results/runs/ar", "command": "python benchmarks/x.py"}, "settings"),
        ({"scored": "benchmarks/results/runs/ar", "settings": {"seed": 0}}, "command"),
        ({"scored": "/home/me/runs/ar", "settings": {"seed": 0}, "command": "python benchmarks/x.py"}, "scored"),
        ({"scored": ["runs/ar", ""], "settings": {"seed": 0}, "command": "python benchmarks/x.py"}, "scored"),
        ({"scored": "runs/ar", "settings": {}, "command": "python benchmarks/x.py"}, "settings"),
    ],
)
def test_the_check_fails_on_a_result_without_provenance(report, missing):
    problems = provenance_problems(report)
    assert problems and all(f"`{missing}`" in problem for problem in problems)


def test_a_complete_result_passes_the_check():
    report = {"scored": {"pipeline": "benchmarks/results/runs/ar", "tokenizer": "user/tokenizer"},
              "settings": {"seed": 0}, "command": "python benchmarks/bench_ar_recipe.py"}  # fmt: skip
    assert provenance_problems(report) == []


def test_report_renders_the_committed_results(tmp_path):
    """benchmarks/report.py needs the JSON files only, and renders what is committed as README.md."""
    for path in [*RESULT_FILES, *RESULTS.glob("**/NOTES.md")]:  # each page's measurement log
        (tmp_path / path.relative_to(RESULTS)).parent.mkdir(exist_ok=True)
        (tmp_path / path.relative_to(RESULTS)).write_bytes(path.read_bytes())
    for folder in [RESULTS, *{path.parent for path in RESULT_FILES} - {RESULTS}]:  # each dataset's page
        rendered = tmp_path / folder.relative_to(RESULTS)
        subprocess.run(
            [sys.executable, "benchmarks/report.py", "--results_dir", str(rendered)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
            timeout=300,
        )
        assert (rendered / "README.md").read_text() == (folder / "README.md").read_text(), (
            f"{folder.relative_to(ROOT)}/README.md is stale: run `python benchmarks/report.py --results_dir ...`"
        )
    assert (tmp_path / "fid_vs_speed.png").is_file()


def test_every_speed_figure_is_timed_by_one_helper_that_reports_the_median_after_warm_ups():
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_common", ROOT / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = common  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(common)
    finally:
        del sys.modules[spec.name]
    calls, syncs = [], []
    durations = iter([0.5, 0.03, 0.01, 0.02])  # the warm-up is slow; the timed calls are not

    def fn():
        calls.append(1)
        common.time.sleep(next(durations))

    timing = common.time_calls(fn, repeats=3, synchronize=lambda: syncs.append(1))
    assert len(calls) == len(syncs) == 4  # one warm-up + 3 timed, each synchronised inside its span
    assert timing.warmup_s >= 0.5 and len(timing.seconds) == 3
    assert timing.best <= timing.median <= max(timing.seconds) and timing.median < 0.5
    with pytest.raises(ValueError, match="repeats"):
        common.time_calls(fn, repeats=0)
    speed_scripts = ["bench_ar_sampling", "bench_ar_static_cache", "bench_diffusion_recipe", "bench_sampling_speed",
                     "bench_throughput", "accelerator_check"]  # fmt: skip
    for name in speed_scripts:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        assert "time_calls(" in source, f"benchmarks/{name}.py times calls with its own loop"


def test_two_runs_appending_to_one_results_file_keep_each_others_rows(tmp_path):
    """Two sweeps on two cores write one sampling_sweep.json: each row is added to the file as it is on disk."""
    results = tmp_path / "sweep.json"
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); from common import append_row\n"
        "for i in range(20):\n"
        "    append_row(sys.argv[1], {'run': sys.argv[2], 'i': i}, {'benchmark': 'b', 'settings': {}}, sys.argv[2], 'c')"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code, str(results), name], cwd=ROOT) for name in ("a", "b")]
    assert all(run.wait(timeout=120) == 0 for run in runs)
    report = json.loads(results.read_text())
    assert sorted((row["run"], row["i"]) for row in report["rows"]) == sorted((n, i) for n in "ab" for i in range(20))
    assert set(report["scored"]) == {"a", "b"} and all(row["command"] == "c" for row in report["rows"])


def test_a_sweep_setting_names_call_arguments_or_scheduler_config(monkeypatch):
    """`choice_temperature=2` rebuilds the diffusion scheduler; `temperature=0.9` goes to the pipeline's call."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from hf_vqgen.pipelines.token_pipeline import split_scheduler_settings
    from tests.pipelines.test_pipeline_discrete_diffusion import tiny_pipeline

    setting = {"temperature": 0.9, "num_inference_steps": 4, "choice_temperature": 2.0}
    call, overrides = split_scheduler_settings(tiny_pipeline().scheduler, setting)
    assert call == {"temperature": 0.9, "num_inference_steps": 4} and overrides == {"choice_temperature": 2.0}
    assert split_scheduler_settings(None, setting) == (setting, {})  # no scheduler: all for the call


def test_calibration_images_with_classes_cycled_take_each_class_in_turn(monkeypatch):
    """As the sampling sweeps ask a prior for classes; a class with too few rows repeats them, no row is picked twice
    before its class runs out."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import torch
    from common import classes_cycled

    labels = torch.tensor([2, 0, 0, 0, 5, 2, 2, 2])
    picked = classes_cycled(labels, 9)
    assert labels[picked].tolist() == [0, 2, 5] * 3
    assert len(set(picked[labels[picked] != 5].tolist())) == 6 and set(picked[labels[picked] == 5].tolist()) == {4}
    assert torch.equal(picked, classes_cycled(labels, 9))  # seeded


def test_recognisability_by_category_splits_combined_labels_as_they_were_combined(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import torch
    from recognisability_by_category import by_column

    labels = torch.tensor([0, 1, 2, 3, 4, 5])  # category * 3 + style, two categories, three styles
    top1 = torch.tensor([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])
    means = by_column(top1, labels, {"label": 2, "style": 3, "extra": 1})
    assert means["label"] == pytest.approx([0.2, 0.6]) and means["style"] == pytest.approx([0.3, 0.4, 0.5])
    assert list(means) == ["label", "style", "extra"]
    assert by_column(top1[:1], labels[:1], {"label": 2})["label"][1] is None  # a class no image has


def test_a_calibration_table_shows_class_agreement_where_rows_have_it(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from common import calibration_table

    metrics = {"num_samples": 4, "fid": 1.0, "kid": 0.01, "precision": 0.5, "recall": 0.5, "recognisability": 0.2}
    rows = {"chimeras": metrics, "train": {**metrics, "conditioning": {"accuracy": 0.5, "accuracy_label": 0.75}}}
    header, _, chimeras, train = calibration_table(rows).splitlines()
    assert header.endswith("| agreement: label | agreement: all classes |")
    assert chimeras.endswith("| – | – |") and train.endswith("| 75.0% | 50.0% |")
    assert "agreement" not in calibration_table({"chimeras": metrics})  # no such columns without the figures


def test_a_card_quotes_the_sweep_row_of_its_shipped_sampling_only(tmp_path):
    """ship_pretrained's card figures: the row that scored the run at the shipped sampling resolved (the library's
    defaults filled in), never a row with the reference class mix or another scheduler."""
    from argparse import Namespace

    from tools.ship_pretrained import sweep_metrics

    run = tmp_path / "run"
    run.mkdir()
    (run / "model_card.json").write_text(json.dumps({"dataset": "emoji"}))
    library = {"guidance_scale": 1.0, "num_inference_steps": 16, "temperature": 1.0, "top_k": None}

    def row(fid, setting, **extra):  # a scheduler setting leaves the call's resolved sampling as it is
        call = {key: value for key, value in setting.items() if key in library}
        return {"scored": str(run), "num_samples": 10, "setting": setting, "resolved": library | call,
                "emoji_classifier": {"fid": fid}, **extra}  # fmt: skip

    scheduler = {"choice_temperature": 1.0}
    rows = [row(1.0, {}), row(2.0, {}, class_mix="reference"), row(3.0, scheduler, scheduler=scheduler),
            row(4.0, {"guidance_scale": 2.0})]  # fmt: skip
    (tmp_path / "sampling_sweep.json").write_text(json.dumps({"rows": rows}))
    args = Namespace(results_dir=tmp_path)

    def quoted(defaults):
        return [figures["global_fid"] for figures in sweep_metrics(args, str(run), "diffusion", defaults).values()]

    assert quoted({}) == [1.0]  # the library defaults, as `{}` resolves them
    assert quoted({"guidance_scale": 1}) == [1.0]  # named explicitly: the same sampling
    assert quoted({"guidance_scale": 2}) == [4.0]
    assert quoted({"temperature": 0.5}) == []
    with_scheduler = sweep_metrics(args, str(run), "diffusion", {}, scheduler)  # shipped in the scheduler's config
    assert [figures["global_fid"] for figures in with_scheduler.values()] == [3.0]


def test_a_shipped_pipeline_keeps_a_sampling_default_of_its_scheduler_in_the_scheduler(tmp_path):
    """`--diffusion_sampling_defaults choice_temperature=8 guidance_scale=2`: the call default is saved as one, the
    scheduler's name in the saved scheduler config, as sweep_sampling.py applied it when it scored the setting."""
    import torch

    from hf_vqgen.pipelines.token_pipeline import split_scheduler_settings
    from tests.pipelines.test_pipeline_discrete_diffusion import tiny_pipeline
    from tools.ship_pretrained import run_scheduler, save_pipeline

    tiny_pipeline().save_pretrained(tmp_path / "run")
    call, overrides = split_scheduler_settings(
        run_scheduler(tmp_path / "run"), {"guidance_scale": 2.0, "choice_temperature": 8.0}
    )
    assert call == {"guidance_scale": 2.0} and overrides == {"choice_temperature": 8.0}
    assert run_scheduler(tmp_path / "no-scheduler") is None  # an AR run: every name is the call's
    shipped = save_pipeline(tmp_path / "run", torch.float32, call, overrides)(tmp_path / "shipped")
    assert shipped.scheduler.config.choice_temperature == 8.0 and shipped.sampling_defaults["guidance_scale"] == 2.0


def test_a_continued_run_is_scored_after_its_earlier_legs(monkeypatch, tmp_path):
    """score_checkpoints places a leg's checkpoints at the steps and minutes trained in all, not from its own start."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from score_checkpoints import earlier_legs

    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for run, init_from in ((first, None), (second, first), (third, second)):
        run.mkdir()
        (run / "run_config.json").write_text(json.dumps({"init_from": str(init_from) if init_from else None}))
    (first / "eval_results.json").write_text(json.dumps({"train_steps": 100, "train_minutes": 10.0}))
    legs = [{"train_steps": 100, "train_minutes": 10.0}, {"train_steps": 50, "train_minutes": 6.0}]
    record = {"train_steps": 50, "train_minutes": 6.0, "training_legs": legs, "total_train_minutes": 16.0}
    (second / "eval_results.json").write_text(json.dumps(record))
    assert earlier_legs(first) == (0, 0.0)
    assert earlier_legs(second) == (100, 10.0)
    assert earlier_legs(third) == (150, 16.0)  # every earlier leg, not only the one it continued
    (second / "eval_results.json").unlink()
    with pytest.raises(SystemExit, match="earlier legs are unknown"):
        earlier_legs(third)


def test_a_sweep_row_with_scheduler_settings_says_so_in_the_results_page(monkeypatch):
    """Two rows that differ only in `choice_temperature` must not read as the same sampling."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from report import sampling_sweep_section

    row = {
        "pipeline": "p",
        "resolved": {"guidance_scale": 2, "top_k": None},
        "num_samples": 10,
        "images_per_second": 1,
    }
    rows = [row, row | {"scheduler": {"choice_temperature": 8}, "class_mix": "reference"}]
    lines = sampling_sweep_section({"rows": rows, "command": "c", "settings": {}})
    assert any("| guidance_scale 2 |" in line for line in lines)
    assert any("guidance_scale 2; scheduler: choice_temperature 8; classes: reference mix" in line for line in lines)
