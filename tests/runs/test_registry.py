"""The run-kind registry (`runs/registry.py`) and the generic `ul train KIND` command: every kind
is reachable by name and from a run directory, the CLI's kind list (kept without importing torch)
agrees with the registry, and the old per-kind commands are aliases of the generic one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unified_latents.cli import main
from unified_latents.cli_parser import RUN_KINDS
from unified_latents.runs.directory import RunError, upgrade_record
from unified_latents.runs.registry import KINDS, kind_of, run_kind

STEPS = ["--set", "train.max_steps=2", "--set", "train.eval_every=2"]


def test_the_cli_lists_exactly_the_registered_kinds() -> None:
    assert tuple(KINDS) == RUN_KINDS
    for name, kind in KINDS.items():
        assert kind.name == name and kind.presets and kind.opens_as in ("autoencoder", "generator")
        assert "tiny" in kind.presets  # every kind has a preset the tests can train


def test_an_unknown_kind_is_a_run_error() -> None:
    with pytest.raises(RunError, match="choose one of autoencoder, base, pixel, end-to-end"):
        run_kind("video")


@pytest.mark.parametrize(
    ("generic", "alias"),
    [
        (["train", "autoencoder", "--preset", "tiny"], ["train-autoencoder", "--preset", "tiny"]),
        (["train", "pixel", "--preset", "tiny"], ["train-base", "--preset", "pixel-tiny"]),
        (["train", "end-to-end", "--preset", "tiny"], ["train-end-to-end", "--preset", "tiny"]),
        (
            ["train", "base", "--preset", "tiny", "--autoencoder", "tiny"],
            ["train-base", "--preset", "tiny", "--autoencoder", "tiny"],
        ),
    ],
)
def test_old_commands_are_aliases_of_ul_train(
    generic: list[str], alias: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*generic, "--dry-run"]) == 0
    first = capsys.readouterr()
    assert main([*alias, "--dry-run"]) == 0
    second = capsys.readouterr()
    assert json.loads(first.out) == json.loads(second.out) and first.err == second.err


def test_kind_of_a_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "pixel", "--preset", "tiny", "--run-dir", str(run), *STEPS]) == 0
    assert kind_of(run).name == "pixel"


def test_old_pixel_records_are_read_as_the_pixel_kind() -> None:
    old = {
        "kind": "base",
        "run": {"autoencoder_run": "", "pixel": {"data": {"name": "digits"}, "logsnr_max": 12.0}},
    }
    assert upgrade_record(old) == {
        "kind": "pixel",
        "run": {"data": {"name": "digits"}, "logsnr_max": 12.0},
    }
    latent = {"kind": "base", "run": {"autoencoder_run": "runs/ae", "pixel": None}}
    assert upgrade_record(latent) == {"kind": "base", "run": {"autoencoder_run": "runs/ae"}}
    assert upgrade_record({"kind": "autoencoder", "run": {}}) == {"kind": "autoencoder", "run": {}}
