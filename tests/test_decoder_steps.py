"""benchmarks/decoder_steps.py (issue 19): one row per (sampler, steps) with the issue's keys,
identical numbers for a fixed seed, finished points skipped (a tiny run, a stand-in Inception)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from unified_latents.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    return importlib.import_module("decoder_steps")


@pytest.mark.slow
def test_rows_are_reproducible_and_resumable(
    benchmark: ModuleType, stand_in_inception: Path, tmp_path: Path
) -> None:
    run = tmp_path / "ae"
    assert main(["train-autoencoder", "--preset", "tiny", "--run-dir", str(run)]) == 0
    outputs = []
    for attempt in ("a", "b"):
        results = tmp_path / f"results-{attempt}"
        arguments = [
            "--autoencoder", str(run), "--num", "12", "--steps", "2",
            "--samplers", "ancestral,ddim", "--work-dir", str(tmp_path / f"work-{attempt}"),
            "--results", str(results), "--inception", str(stand_in_inception),
        ]  # fmt: skip
        assert benchmark.main(arguments) == 0
        outputs.append(json.loads((results / "fast_decoder.json").read_text()))
    first, second = outputs
    assert [set(row) for row in first] == [set(benchmark.ROW_KEYS)] * 2
    assert [(r["decoder"], r["steps"]) for r in first] == [
        ("diffusion-ancestral", 2),
        ("diffusion-ddim", 2),
    ]
    for a, b in zip(first, second, strict=True):  # a fixed seed gives the same numbers
        assert {k: v for k, v in a.items() if k != "seconds_per_image"} == {
            k: v for k, v in b.items() if k != "seconds_per_image"
        }
    point = tmp_path / "work-a" / "ddim-002.json"
    record = json.loads(point.read_text())
    point.write_text(json.dumps({**record, "psnr": -1.0}))  # a finished point is reused
    assert benchmark.main([*arguments[:-6], "--work-dir", str(tmp_path / "work-a"),
                           "--results", str(tmp_path / "r"), "--inception",
                           str(stand_in_inception)]) == 0  # fmt: skip
    rows = json.loads((tmp_path / "r" / "fast_decoder.json").read_text())
    assert rows[-1]["psnr"] == -1.0


@pytest.mark.slow
def test_a_distilled_student_is_a_row_beside_its_teacher(
    benchmark: ModuleType, stand_in_inception: Path, tmp_path: Path
) -> None:
    """`--distilled RUN[@CHECKPOINT]` measures the student at its own steps (DDIM), also for
    gFID through the base model; a second invocation on the same WORK reports every point."""
    short = ["--set", "train.max_steps=4", "--set", "train.eval_every=4"]
    ae, base, student = tmp_path / "ae", tmp_path / "base", tmp_path / "student"
    assert main(["train", "autoencoder", "--preset", "tiny", "--run-dir", str(ae), *short]) == 0
    base_args = ["train", "base", "--preset", "tiny", "--autoencoder", str(ae), *short]
    assert main([*base_args, "--run-dir", str(base)]) == 0
    distill = ["distill-decoder", "--run", str(ae), "--preset", "tiny", "--run-dir"]
    assert main([*distill, str(student), "--set", "train.keep_checkpoints=0"]) == 0
    common = [
        "--autoencoder", str(ae), "--base", str(base), "--num", "8", "--steps", "2",
        "--work-dir", str(tmp_path / "work"), "--inception", str(stand_in_inception),
        "--results", str(tmp_path / "results"),
    ]  # fmt: skip
    assert benchmark.main([*common, "--samplers", "ddim"]) == 0
    assert benchmark.main([*common, "--samplers", "", "--distilled", str(student),
                           "--distilled", f"{student}@3", "--grid", "3"]) == 0  # fmt: skip
    rows = json.loads((tmp_path / "results" / "fast_decoder.json").read_text())
    assert [(r["decoder"], r["steps"]) for r in rows] == [
        ("diffusion-ddim", 2),
        ("distilled-ddim", 1),  # the tiny preset's phases 4 → 2 → 1, 2 steps each
        ("distilled-ddim", 2),  # checkpoint 3: the second phase's student
    ]
    assert all(row["gfid"] is not None and row["seconds_per_image"] > 0 for row in rows)
    with Image.open(tmp_path / "results" / "fast_decoder_grid.png") as grid:
        assert grid.size[0] == grid.size[1] > 0  # 3 images wide; originals + 2 students high
    with pytest.raises(SystemExit, match="not a decoder-distillation run"):
        benchmark.main([*common, "--samplers", "", "--distilled", str(ae)])
