"""benchmarks/paper_tables.py: the FLOP-budget arithmetic, the job runner and the table building
(from hand-written eval.json files); no training."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def modules() -> dict[str, ModuleType]:
    names = ("_tables_plan", "_tables_jobs", "_tables_format", "_tables_report", "paper_tables")
    return {name: importlib.import_module(name) for name in names}


def test_steps_for_flops_stays_within_the_budget(modules: dict[str, ModuleType]) -> None:
    plan = modules["_tables_plan"]
    assert plan.steps_for_flops(1000.0, 10, 10.0) == 10  # exact multiple stays exact
    assert plan.steps_for_flops(999.0, 10, 10.0) == 9
    assert plan.steps_for_flops(1.0, 10, 10.0) == 1  # at least one step
    assert plan.steps_for_flops(3 * 128 * 1.085e9, 128, 1.085e9) == 3
    with pytest.raises(ValueError):
        plan.steps_for_flops(0.0, 10, 10.0)


def test_equal_flop_budgets(modules: dict[str, ModuleType]) -> None:
    plan = modules["_tables_plan"]
    costs = {"ul": (128, 100.0), "kl-vae": (128, 100.0), "pixel": (64, 300.0)}
    flops, budgets = plan.equal_flop_budgets(costs, steps=30)
    assert flops == 30 * 128 * 100.0
    assert budgets["ul"].steps == budgets["kl-vae"].steps == 30
    assert budgets["pixel"].steps == 20  # 384000 / (64 · 300)
    assert all(budget.flops <= flops for budget in budgets.values())
    flops, budgets = plan.equal_flop_budgets(costs, flops=1e6)
    assert flops == 1e6 and budgets["ul"].steps == 78 and budgets["pixel"].steps == 52
    with pytest.raises(ValueError):
        plan.equal_flop_budgets(costs, flops=1e6, steps=3)
    with pytest.raises(ValueError):
        plan.equal_flop_budgets(costs)


def test_two_stage_flops_needs_both_parts(modules: dict[str, ModuleType]) -> None:
    plan = modules["_tables_plan"]
    record = {"training": {"total_flops": 5.0, "parts": {"stage1": {}, "base": {}}}}
    assert plan.two_stage_flops(record) == 5.0
    with pytest.raises(ValueError, match="total_flops"):
        plan.two_stage_flops({"training": {"total_flops": 5.0, "parts": {"base": {}}}})


def test_run_commands_and_presets(modules: dict[str, ModuleType], tmp_path: Path) -> None:
    plan = modules["_tables_plan"]
    tiny, full = plan.Presets(tiny=True), plan.Presets(tiny=False)
    assert (tiny.autoencoder("ul"), tiny.autoencoder("kl-vae"), tiny.pixel) == (
        "tiny",
        "kl-vae-tiny",
        "pixel-tiny",
    )
    assert (full.autoencoder("ul"), full.autoencoder("kl-vae"), full.base) == (
        "fashion-mnist",
        "kl-vae",
        "fashion-mnist",
    )
    run = plan.Run("base/ul", "base", "tiny", ("train.max_steps=7",), autoencoder="stage1/ul")
    args = run.train_args(tmp_path)
    assert args[:3] == ["train-base", "--preset", "tiny"]
    assert args[args.index("--autoencoder") + 1] == str(tmp_path / "stage1/ul")
    assert args[-2:] == ["--set", "train.max_steps=7"]
    assert run.train_config().max_steps == 7


def test_job_runner_respects_dependencies_and_failures(modules: dict[str, ModuleType]) -> None:
    jobs_module = modules["_tables_jobs"]
    order: list[str] = []

    def action(name: str, fail: bool = False) -> Any:
        def run() -> str:
            order.append(name)
            if fail:
                raise RuntimeError("boom")
            return "done"

        return run

    Job = jobs_module.Job
    jobs = {
        "b": Job("b", ("a",), action("b")),
        "a": Job("a", (), action("a")),
        "c": Job("c", (), action("c", fail=True)),
        "d": Job("d", ("c",), action("d")),
        "e": Job("e", ("d", "b"), action("e")),
    }
    status = jobs_module.run_jobs(jobs, workers=1)
    assert order.index("a") < order.index("b") and "d" not in order and "e" not in order
    assert status["a"] == status["b"] == "ok"
    assert status["c"].startswith("failed: boom")
    assert status["d"].startswith("not run") and status["e"].startswith("not run")


def _write_eval(work: Path, key: str, record: dict[str, Any]) -> None:
    path = work / key / "eval" / "eval.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))


def _base_record(gfid: float, step: int, stage1: bool = True) -> dict[str, Any]:
    parts = {"base": {"training_flops": 2e12, "global_batch_size": 128}}
    parts["base"]["training_flops_per_image"] = 1.1e9
    if stage1:
        parts["stage1"] = {"training_flops": 1e13}
    total = 2e12 + (1e13 if stage1 else 0.0)
    return {
        "step": step,
        "num": 50,
        "metrics": {"gFID@50": gfid, "FD_cls@50": 3.0, "classifier_accuracy": 0.5},
        "training": {"total_flops": total, "parts": parts},
    }


def test_tables_come_from_eval_files_only(modules: dict[str, ModuleType], tmp_path: Path) -> None:
    report, format_module = modules["_tables_report"], modules["_tables_format"]
    work = tmp_path / "work"
    _write_eval(work, "base/ul", _base_record(40.0, 14))
    _write_eval(work, "base/kl-vae", _base_record(55.0, 14))
    plan = {
        "base_budget": {"flops": 2e12, "how": "test"},
        "commands": {"base/ul": {"train": "ul train-base A", "evaluate": "ul evaluate B"}},
        "status": {"train base/pixel": "failed: exit 1"},
    }
    ctx = format_module.Context(work, 50, plan, tmp_path / "figures")
    section = report.flops_section(ctx)
    text = "\n".join(section.render(tmp_path / "figures"))
    ul_row, kl_row, pixel_row = section.rows
    assert ul_row[5] == "40" and kl_row[5] == "55" and ul_row[1] == "14"
    assert pixel_row[5] == "—" and "(train failed)" in pixel_row[0]  # nothing invented
    assert all(row[-1] == "small-scale, CPU, not comparable to the paper" for row in section.rows)
    assert "gFID@N" in text and "`ul train-base A`" in text and "`ul evaluate B`" in text
    assert any("lower gFID@N" in finding for finding in section.findings)
    assert (tmp_path / "figures" / "flops_generation.png").exists()


def test_monotonic_findings(modules: dict[str, ModuleType]) -> None:
    report = modules["_tables_report"]
    key = "model.loss_factor"

    def point(c_lf: float, bits: float, psnr: float) -> dict[str, Any]:
        return {"values": {key: c_lf}, "metrics": {"bits_per_pixel": bits, "psnr_db": psnr}}

    rising = [point(2.0, 0.3, 20.0), point(1.2, 0.1, 15.0), point(1.5, 0.2, 18.0)]
    assert report.monotonic_findings(rising, [key]) == [
        "bits/pixel increases monotonically with c_lf",
        "PSNR increases monotonically with bits/pixel",
    ]
    broken = [point(1.2, 0.2, 15.0), point(1.5, 0.1, 18.0)]
    assert "does NOT increase" in report.monotonic_findings(broken, [key])[0]


def test_results_block_keeps_other_content(modules: dict[str, ModuleType]) -> None:
    report = modules["_tables_report"]
    first = report.replace_block(None, "table v1")
    assert first.startswith("# Measured results") and "table v1" in first
    edited = "# Results\n\nintro\n\n" + first.split("\n", 2)[2] + "\nmore notes\n"
    second = report.replace_block(edited, "table v2")
    assert "table v1" not in second and "table v2" in second
    assert second.startswith("# Results\n\nintro") and second.rstrip().endswith("more notes")
    assert report.replace_block("# Other\n", "x").startswith("# Other\n\n" + report.BEGIN)


def test_plan_of_one_section_needs_no_models(
    modules: dict[str, ModuleType], tmp_path: Path
) -> None:
    tables = modules["paper_tables"]
    args = tables.parse_args(["--tiny", "--only", "ablations", "--work-dir", str(tmp_path)])
    jobs = tables.Orchestrator(args).plan_jobs(["ablations"])
    assert len(jobs) == 12  # six stage-1 presets: train + evaluate each
    assert jobs["evaluate stage1/kl-vae"].deps == ("train stage1/kl-vae",)
    assert next(iter(jobs)) == "train stage1/ul"
