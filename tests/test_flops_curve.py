"""benchmarks/flops_curve.py (issue 14): the commands each arm trains with, the choices the
evaluation makes from written measurements, claims, and the rows of flops_curve.json (built from
hand-written measurement files; no training, no Inception)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROW_KEYS = {
    "arm", "latent_space", "base_flops", "total_flops", "base_steps", "gfid", "n", "fd_cls",
    "class_accuracy", "guidance", "seed",
}  # fmt: skip


@pytest.fixture(scope="module")
def curve() -> dict[str, ModuleType]:
    names = ("flops_curve", "_curve_eval", "_curve_report")
    return {name: importlib.import_module(name) for name in names}


def write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_every_arm_trains_the_same_base_model_and_keeps_the_curve_checkpoints(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc = curve["flops_curve"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800)
    assert plan.budgets() == [100, 200, 400, 800]
    for name in fc.DEFAULT_ARMS:
        args = plan.base_args(fc.ARMS[name])
        assert "train.checkpoint_every=100" in args and "train.max_steps=800" in args
        assert ("model.latent_normalization=scalar" in args) == (name != "pixels")
        assert ("--autoencoder" in args) == (name != "pixels")
    assert plan.stage1_dir(fc.ARMS["ul-lf3.0-raw"]) == plan.stage1_dir(fc.ARMS["ul-lf3.0"])
    jobs = fc.training_jobs(plan, [fc.ARMS["ul-lf3.0"], fc.ARMS["ul-lf3.0-raw"]])
    assert list(jobs) == ["stage1/ul-lf3.0", "base/ul-lf3.0", "base/ul-lf3.0-raw"]


def test_decoder_and_guidance_choices(curve: dict[str, ModuleType], tmp_path: Path) -> None:
    fc, ce = curve["flops_curve"], curve["_curve_eval"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800)
    arms = [fc.ARMS["ul-lf1.5"], fc.ARMS["ul-lf3.0"], fc.ARMS["kl-1e-6"]]
    evaluation = ce.Evaluation(plan, arms, num=10)
    assert evaluation.decoder_choice() is None  # nothing measured yet
    rfid = {(4, "noisy"): 50.0, (8, "noisy"): 40.5, (16, "noisy"): 40.0, (32, "noisy"): 45.0}
    for arm in arms[:2]:
        for steps, source in ce.DECODER_GRID:
            value = rfid.get((steps, source), 60.0)
            write(evaluation.decoder_path(arm, steps, source), {"rfid": value})
    assert evaluation.decoder_choice() == (8, "noisy")  # within 2% of the best: fewer steps
    assert evaluation.decoding(arms[2]) == (1, "clean")  # KL-VAE: a deterministic decoder
    for guidance, fd_cls in zip(ce.GUIDANCE_GRID, (3.0, 2.0, 2.5), strict=True):
        record = {"fd_cls": fd_cls, "gfid": 10.0 - fd_cls, "guidance": guidance}
        write(evaluation.guidance_path(arms[0], 800, guidance), record)
    assert evaluation.guidance_choice(arms[0], 800) == ce.GUIDANCE_GRID[1]  # by FD_cls, not gFID
    assert evaluation.guidance_choice(arms[0], 400) is None


def test_a_claim_excludes_live_processes_and_takes_over_dead_ones(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    ce = curve["_curve_eval"]
    target = tmp_path / "m.json"
    assert ce.claim(target) and not ce.claim(target)  # this process holds it
    target.with_suffix(".claim").write_text(str(2**22 + 12345))  # no such PID
    assert ce.claim(target)
    assert target.with_suffix(".claim").read_text() == str(os.getpid())


def test_rows_have_the_issues_keys(curve: dict[str, ModuleType], tmp_path: Path) -> None:
    fc, ce, cr = curve["flops_curve"], curve["_curve_eval"], curve["_curve_report"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800)
    arms = [fc.ARMS["ul-lf1.5"], fc.ARMS["kl-1e-6"], fc.ARMS["pixels"]]
    evaluation = ce.Evaluation(plan, arms, num=10)
    for arm in arms[:2]:
        config = {"config": {"run": {"train": {"batch_size": 64}}}}
        write(plan.stage1_dir(arm) / "config.json", config)
        recon = {"stage1_step": 100, "stage1_training_flops_per_image": 2.0, "psnr": 20.0}
        recon |= {"rfid": 30.0, "bits_per_pixel": 0.1} if arm.latent_space == "ul" else {}
        recon |= {"rfid": 20.0, "kl": 900.0} if arm.latent_space == "kl-vae" else {}
        write(evaluation.root / "recon" / f"{arm.name}.json", recon)
    for arm in arms:
        record = {
            "step": 400, "num": 10, "seed": 0, "gfid": 50.0, "fd_cls": 3.0, "guidance": 2.0,
            "class_accuracy": 0.5, "batch_size": 128, "base_training_flops_per_sample": 3.0,
            "raw_latent_std": 0.4,
        }  # fmt: skip
        write(evaluation.curve_path(arm, 400, 0), record)
    rows = {row["arm"]: row for row in cr.curve_rows(evaluation)}
    assert set(rows["ul-lf1.5"]) == ROW_KEYS | {"bits_per_pixel", "psnr", "rfid", "latent_std"}
    assert set(rows["kl-1e-6"]) == ROW_KEYS | {"kl", "psnr", "rfid", "latent_std"}
    assert set(rows["pixels"]) == ROW_KEYS
    assert rows["ul-lf1.5"]["base_flops"] == 400 * 128 * 3.0
    assert rows["ul-lf1.5"]["total_flops"] == 400 * 128 * 3.0 + 100 * 64 * 2.0
    assert rows["pixels"]["total_flops"] == rows["pixels"]["base_flops"]


def test_a_given_decoder_skips_the_grid_and_the_report_keeps_the_earlier_one(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc, ce, cr = curve["flops_curve"], curve["_curve_eval"], curve["_curve_report"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800, decoder="32,clean")
    arms = [fc.ARMS["ul-lf3.0"], fc.ARMS["kl-1e-6"]]
    evaluation = ce.Evaluation(plan, arms, num=10)
    assert evaluation.decoder_choice() == (32, "clean")
    paths = [item.path.relative_to(evaluation.root) for item in evaluation.items()]
    assert not any(path.parts[0] == "decoder" for path in paths)
    curve_points = [path for path in paths if path.parts[0] == "curve"]
    seeds = [path.stem.rsplit("seed", 1)[1] for path in curve_points]
    assert seeds == ["0"] * 8 + ["1"] * 2  # every first-seed point before the second seeds
    earlier = {"decoder_selection": {"ul-lf3.0": {"32-clean": {"rfid": 24.0}}}}
    earlier["plan"] = {"commits": {"train": "abc123"}}
    info = cr.details(evaluation, earlier)
    assert info["decoder_selection"] == earlier["decoder_selection"]
    assert "abc123" in info["decoder_selection_source"]
    assert info["decoder_choice"] == (32, "clean")


def test_a_malformed_decoder_option_is_a_clear_error(
    curve: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        curve["flops_curve"].main(["report", "--work-dir", str(tmp_path), "--decoder", "32"])
    assert "expected STEPS,clean or STEPS,noisy" in capsys.readouterr().err


def test_a_work_dir_keeps_the_decoder_it_was_started_with(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc = curve["flops_curve"]
    results = tmp_path / "results"
    fc.main(["report", "--work-dir", str(tmp_path), "--decoder", "32,clean",
             "--results", str(results)])  # fmt: skip
    fc.main(["report", "--work-dir", str(tmp_path), "--results", str(results)])
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["settings"]["decoder"] == "32,clean"
    details = json.loads((results / "flops_curve_details.json").read_text())
    assert details["decoder_choice"] == [32, "clean"]


def test_sample_strips_take_each_arms_largest_seed0_grid(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    from PIL import Image

    def grid(name: str, shade: int) -> str:
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (100, 100), (shade, shade, shade)).save(path)
        return str(path)

    record = {"seed": 0, "guidance": 2.0}
    info = {
        "curve": {
            "kl": [{**record, "step": 750, "grid": grid("kl-750", 10)},
                   {**record, "step": 1500, "grid": grid("kl-1500", 200)},
                   {**record, "step": 3000, "seed": 1, "grid": grid("kl-seed1", 30)}, None],
            "ul": [{**record, "step": 750, "grid": grid("ul-750", 90)}],
            "pixels": [{**record, "step": 1500, "grid": str(tmp_path / "missing.png")}],
        }
    }  # fmt: skip
    curve["_curve_report"].sample_strips(info, tmp_path, rows_per_arm=3)
    strips = Image.open(tmp_path / "flops_curve_samples.png")
    assert strips.height == 2 * 30  # two arms with a grid, 3 of 10 rows each; pixels has none
    assert strips.getpixel((strips.width - 1, 0)) == (200, 200, 200)  # kl: its largest seed-0 step
    assert strips.getpixel((strips.width - 1, 59)) == (90, 90, 90)  # then ul


def test_an_extended_arm_trains_further_and_is_measured_beyond_the_budget(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc, ce = curve["flops_curve"], curve["_curve_eval"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800, extend=(("kl-1e-2", 1600),))
    kl, ul = fc.ARMS["kl-1e-2"], fc.ARMS["ul-lf3.0"]
    assert plan.budgets(kl) == [100, 200, 400, 800, 1200, 1600] and plan.budgets(ul)[-1] == 800
    assert "train.max_steps=1600" in plan.base_args(kl)  # same checkpoint spacing as before
    assert "train.checkpoint_every=100" in plan.base_args(kl)
    assert "train.max_steps=800" in plan.base_args(ul)
    paths = [item.path for item in ce.Evaluation(plan, [ul, kl], num=10).items()]
    assert ce.Evaluation(plan, [ul, kl], num=10).curve_path(kl, 1600, 0) in paths
    assert not any("step001600" in str(path) and "ul-lf3.0" in str(path) for path in paths)
    # the second sampling seed stays at the common budget, for every arm
    seconds = [path for path in paths if path.name.endswith("seed1.json")]
    assert sorted(path.name for path in seconds) == ["step000800-seed1.json"] * 2


def test_extensions_are_checked_and_kept_by_the_work_dir(
    curve: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fc, results = curve["flops_curve"], tmp_path / "results"
    base = ["report", "--work-dir", str(tmp_path), "--base-steps", "800", "--results", str(results)]
    for bad in ("kl-1e-2=1000", "nope=1600", "kl-1e-2=800", "kl-1e-2"):
        with pytest.raises(SystemExit):
            fc.main([*base, "--extend", bad])
        assert "--extend" in capsys.readouterr().err
    fc.main([*base, "--extend", "kl-1e-2=1600,kl-1e-6=2400"])
    fc.main(base)
    settings = json.loads((tmp_path / "plan.json").read_text())["settings"]
    assert settings["extend"] == [["kl-1e-2", 1600], ["kl-1e-6", 2400]]


def test_the_work_dir_keeps_the_checkout_its_trainings_ran(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc, results = curve["flops_curve"], tmp_path / "results"
    base = ["report", "--work-dir", str(tmp_path), "--results", str(results)]
    fc.main([*base, "--ul-from", str(tmp_path / "elsewhere")])
    fc.main(base)  # a later phase without --ul-from does not overwrite it
    settings = json.loads((tmp_path / "plan.json").read_text())["settings"]
    assert settings["ul_from"] == str((tmp_path / "elsewhere").resolve())


def test_the_plan_keeps_every_commit_a_phase_ran_at(
    curve: dict[str, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fc = curve["flops_curve"]
    (tmp_path / "plan.json").write_text(json.dumps({"commits": {"report": "old"}}))
    for commit in ("new", "new"):
        monkeypatch.setattr(fc, "git_commit", lambda commit=commit: commit)
        fc.record_plan(fc.Plan(tmp_path), [fc.ARMS["pixels"]], "report")
    assert json.loads((tmp_path / "plan.json").read_text())["commits"]["report"] == ["old", "new"]


def test_an_arm_with_a_shorter_stage1_trains_and_waits_for_its_own_steps(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc, ce = curve["flops_curve"], curve["_curve_eval"]
    plan = fc.Plan(tmp_path, stage1_steps=100, base_steps=800)
    short, full = fc.ARMS["ul-lf1.5-s3000"], fc.ARMS["ul-lf1.5"]
    assert plan.stage1_dir(short) != plan.stage1_dir(full)
    assert "train.max_steps=3000" in plan.stage1_args(short)
    assert "train.max_steps=100" in plan.stage1_args(full)
    # otherwise the same stage-1 command: preset, loss factor, quiet
    differs = {"--run-dir", str(plan.stage1_dir(short)), "train.max_steps=3000"}
    others = {"--run-dir", str(plan.stage1_dir(full)), "train.max_steps=100"}
    assert set(plan.stage1_args(short)) - differs == set(plan.stage1_args(full)) - others
    assert plan.base_args(short)[3:] == [
        a.replace("ul-lf1.5", "ul-lf1.5-s3000") for a in plan.base_args(full)[3:]
    ]  # the same base model
    evaluation = ce.Evaluation(plan, [short], num=10)
    assert not evaluation.stage1_done(short)  # no checkpoint at step 3,000 yet


def test_the_plan_record_keeps_arms_of_earlier_phases(
    curve: dict[str, ModuleType], tmp_path: Path
) -> None:
    fc = curve["flops_curve"]
    fc.record_plan(fc.Plan(tmp_path), [fc.ARMS["pixels"]], "train")
    fc.record_plan(fc.Plan(tmp_path), [fc.ARMS["ul-lf1.5-s3000"]], "train")
    record = json.loads((tmp_path / "plan.json").read_text())
    assert set(record["arms"]) == {"pixels", "ul-lf1.5-s3000"}
    names = {"base/pixels", "stage1/ul-lf1.5-s3000", "base/ul-lf1.5-s3000"}
    assert names <= set(record["commands"])
