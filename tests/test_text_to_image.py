"""benchmarks/text_to_image.py (issue 16): the arms train the same text-conditioned base model on
real presets, and text_to_image.json's rows carry the issue's keys from written eval.json files
(no training, no Inception)."""

from __future__ import annotations

import importlib
import json
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from unified_latents.runs.presets import AUTOENCODER_PRESETS, BASE_PRESETS, PIXEL_PRESETS


@pytest.fixture(scope="module")
def t2i() -> ModuleType:
    return importlib.import_module("text_to_image")


def test_every_arm_names_real_presets_and_the_same_base_model(
    t2i: ModuleType, tmp_path: Path
) -> None:
    plan = t2i.plan_of(t2i.parse_args(["train", "--work-dir", str(tmp_path)]))
    for arm in t2i.ARMS:
        if arm.stage1:
            assert AUTOENCODER_PRESETS[arm.stage1[0]]().data.name == "emoji-captions"
            assert BASE_PRESETS[arm.base[0]]().model.condition.kind == "text-tokens"
            args = plan.base_args(arm)
            assert args[args.index("--preset") + 1] == "emoji-text"
            assert "model.latent_normalization=scalar" in args
        else:  # `train-base --preset pixel-NAME` is the pixel kind's preset NAME
            pixel = PIXEL_PRESETS[arm.base[0].removeprefix("pixel-")]()
            assert pixel.data.name == "emoji-captions"
    assert [arm.latent_space for arm in t2i.ARMS] == ["ul", "kl-vae", "pixels"]
    jobs = t2i.training_jobs(plan, list(t2i.ARMS))
    assert set(jobs) == {"stage1/ul", "stage1/kl-vae", "base/ul", "base/kl-vae", "base/pixels"}
    with pytest.raises(SystemExit, match="unknown arm"):
        t2i.chosen_arms(t2i.parse_args(["train", "--work-dir", str(tmp_path), "--arms", "vq"]))


def eval_record(num: int, gfid: float, base_flops: float, part: bool = True) -> dict[str, Any]:
    flops = {"training_total": 2 * base_flops}
    if part:
        flops |= {"training_total_stage1": base_flops, "training_total_base": base_flops}
    else:
        flops = {"training_total": base_flops}  # pixel runs: one part
    metrics = {f"gFID@{num}": gfid, "r1": 0.05, "r1_chance": 0.0023, "r1_real": 0.18}
    return {"step": 6000, "num": num, "metrics": metrics, "flops": flops}


def test_report_rows_have_the_issues_keys(t2i: ModuleType, tmp_path: Path) -> None:
    plan = t2i.plan_of(t2i.parse_args(["report", "--work-dir", str(tmp_path)]))
    for arm, gfid in zip(t2i.ARMS, (30.0, 35.0, 50.0), strict=True):
        path = plan.base_dir(arm) / "eval" / "eval.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(eval_record(888, gfid, 1e14, part=arm.name != "pixels")))
    out = tmp_path / "text_to_image.json"
    rows = t2i.report(plan, list(t2i.ARMS), out)
    assert json.loads(out.read_text()) == rows
    assert [tuple(row) for row in rows] == [t2i.ROW_KEYS] * 3
    assert [row["gfid"] for row in rows] == [30.0, 35.0, 50.0]
    assert {row["base_flops"] for row in rows} == {1e14}  # the base part, not stage 1's
    assert (tmp_path / "text_to_image_details.json").exists()


def test_rows_at_different_n_are_refused(t2i: ModuleType, tmp_path: Path) -> None:
    plan = t2i.plan_of(t2i.parse_args(["report", "--work-dir", str(tmp_path)]))
    for arm, num in zip(t2i.ARMS[:2], (888, 500), strict=True):
        path = plan.base_dir(arm) / "eval" / "eval.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(eval_record(num, 30.0, 1e14)))
    with pytest.raises(SystemExit, match="different N"):
        t2i.report(plan, list(t2i.ARMS[:2]), tmp_path / "out.json")


def test_the_alignment_metric_is_trained_once_with_the_checkouts_script(
    t2i: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric_dir, calls = tmp_path / "metric", []
    monkeypatch.setattr(t2i, "default_metric_dir", lambda size: metric_dir)
    monkeypatch.setattr(t2i, "python_command", lambda *args: calls.append(args))
    checkout = tmp_path / "checkout"
    assert t2i.alignment_job(tmp_path / "work", checkout).startswith("trained")
    ((command, log, used_checkout),) = calls
    assert command[1] == str(checkout / "benchmarks" / "train_alignment.py")
    assert used_checkout == checkout and log == tmp_path / "work" / "logs" / "alignment.log"
    metric_dir.mkdir()
    (metric_dir / "alignment.json").write_text("{}")
    assert t2i.alignment_job(tmp_path / "work", checkout).startswith("found")
    assert len(calls) == 1


def test_processes_that_split_the_arms_train_the_alignment_metric_once(
    t2i: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `train` invocations at once (arms split over processes) used to both train the
    metric; the second must wait for the first and then find it."""
    metric = tmp_path / "cache" / "emoji-32-seed0"
    calls: list[list[str]] = []

    def fake_training(command: list[str], log: Path, checkout: Path) -> None:
        calls.append(command)
        time.sleep(0.3)  # long enough for the other job to look for the metric meanwhile
        metric.mkdir(parents=True)
        (metric / "alignment.json").write_text("{}")

    monkeypatch.setattr(t2i, "default_metric_dir", lambda size: metric)
    monkeypatch.setattr(t2i, "python_command", fake_training)
    outcomes: list[str] = []
    jobs = [
        threading.Thread(target=lambda: outcomes.append(t2i.alignment_job(tmp_path, tmp_path)))
        for _ in range(2)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=10)
    assert len(calls) == 1
    assert sorted(outcome.split()[0] for outcome in outcomes) == ["found", "trained"]
