"""benchmarks/decoder_steps.py (issue 19): one row per (sampler, steps) with the issue's keys,
identical numbers for a fixed seed, finished points skipped (a tiny run, a stand-in Inception)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from unified_latents.cli import main


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    return importlib.import_module("decoder_steps")


@pytest.mark.slow
def test_rows_are_reproducible_and_resumable(
    benchmark: ModuleType, stand_in_inception: Path, tmp_path: Path
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
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
    finally:
        torch.set_num_threads(threads)
