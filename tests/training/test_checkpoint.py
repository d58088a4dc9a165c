"""Atomic checkpoints: keep the last K, fall back past a corrupt one, no pickle needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from unified_latents.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    optimizer_from_flat,
    optimizer_to_flat,
    read_latest_checkpoint,
    save_checkpoint,
)


def trained_pieces() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5), nn.Linear(5, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).pow(2).mean().backward()
        optimizer.step()
    return model, optimizer


def save(directory: Path, step: int, keep: int = 2) -> Path:
    model, optimizer = trained_pieces()
    return save_checkpoint(
        directory,
        step,
        model=model,
        ema=model,
        optimizer=optimizer,
        tensors={"rng": torch.arange(4, dtype=torch.uint8)},
        state={"note": "x"},
        keep=keep,
    )


def test_keeps_last_k_and_leaves_no_temporaries(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        save(tmp_path, step)
    assert [c.step for c in list_checkpoints(tmp_path)] == [20, 30]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_incomplete_directory_is_ignored(tmp_path: Path) -> None:
    save(tmp_path, 10)
    (tmp_path / ".tmp_step_00000020_1").mkdir()  # what a kill -9 mid-write leaves
    (tmp_path / "step_00000030").mkdir()  # no state file: never renamed into place completely
    assert [c.step for c in list_checkpoints(tmp_path)] == [10]


def test_corrupt_latest_falls_back_to_previous(tmp_path: Path) -> None:
    save(tmp_path, 10)
    latest = save(tmp_path, 20)
    (latest / "model.safetensors").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="step_00000020 is unreadable"):
        loaded = read_latest_checkpoint(tmp_path)
    assert loaded.state["step"] == 10
    (tmp_path / "step_00000010" / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="every checkpoint"), pytest.warns(UserWarning):
        read_latest_checkpoint(tmp_path)


def test_optimizer_state_round_trips_without_pickle() -> None:
    model, optimizer = trained_pieces()
    tensors, meta = optimizer_to_flat(optimizer)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    optimizer_from_flat(fresh, tensors, meta)
    original, restored = optimizer.state_dict(), fresh.state_dict()
    assert original["param_groups"] == restored["param_groups"]
    for index, state in original["state"].items():
        for name, value in state.items():
            assert torch.equal(value, restored["state"][index][name])
