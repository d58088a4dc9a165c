"""benchmarks/rate_targeting.py (issue 19): the settling step, and train → report on tiny runs
(a targeted and a fixed-c_lf run) with the issue's row keys (a stand-in Inception)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def benchmark() -> ModuleType:
    return importlib.import_module("rate_targeting")


def test_the_settling_step_is_where_the_rate_stays_inside_the_band(benchmark: ModuleType) -> None:
    steps = [100, 200, 300, 400, 500]
    assert benchmark.settling_step(steps, [0.2, 0.104, 0.2, 0.097, 0.1], 0.1) == 400
    assert benchmark.settling_step(steps, [0.1, 0.1, 0.1, 0.1, 0.2], 0.1) is None
    assert benchmark.settling_step(steps, [-1.0, 0.1, 0.1, 0.1, 0.1], 0.1) == 200  # −1: unset


@pytest.mark.slow
def test_train_and_report_on_tiny_runs(
    benchmark: ModuleType, stand_in_inception: Path, tmp_path: Path
) -> None:
    work = ["--work-dir", str(tmp_path / "work")]
    train = ["train", "--preset", "tiny", "--targets", "0.5", "--fixed", "2", "--steps", "4"]
    assert benchmark.main([*train, *work]) == 0
    assert benchmark.main([*train, *work]) == 0  # finished runs are skipped
    results = tmp_path / "results"
    report = ["report", "--num", "8", "--results", str(results)]
    assert benchmark.main([*report, "--inception", str(stand_in_inception), *work]) == 0
    rows = json.loads((results / "rate_targeting.json").read_text())
    assert [set(row) for row in rows] == [set(benchmark.ROW_KEYS)]
    assert rows[0]["target_bits_per_pixel"] == 0.5 and rows[0]["final_bits_per_pixel"] > 0
    details = json.loads((results / "rate_targeting_details.json").read_text())
    by_name = {Path(run["run"]).name: run for run in details["runs"]}
    assert set(by_name) == {"target-0.5", "fixed-2"}
    assert by_name["fixed-2"]["loss_factor"] == 2.0
    assert by_name["target-0.5"]["trajectory"]["loss_factor"]  # the controller was logged
    assert (results / "rate_targeting.png").stat().st_size > 0


def test_compared_runs_of_the_same_name_do_not_share_a_cached_measurement(tmp_path: Path) -> None:
    rate_targeting = importlib.import_module("rate_targeting")
    work = tmp_path / "set"
    own = rate_targeting.cache_name(work / "runs" / "target-0.04", work)
    other = rate_targeting.cache_name(tmp_path / "older" / "runs" / "target-0.04", work)
    assert own == "runs-target-0.04" and other != own and "older" in other
