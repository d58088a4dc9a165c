"""Model initialisation follows `train.seed` (and nothing else), and leaves the global RNG alone."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from unified_latents.cli import main
from unified_latents.training.checkpoint import list_checkpoints
from unified_latents.training.seeding import seeded


def weights(seed: int) -> dict[str, torch.Tensor]:
    with seeded(seed):
        return nn.Linear(8, 8).state_dict()


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["weight"], other["weight"])


def test_global_generator_is_restored() -> None:
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    with seeded(0):
        torch.rand(100)
    assert torch.equal(torch.rand(4), expected)


def train_tiny(run_dir: Path, *extra: str) -> dict[str, torch.Tensor]:
    arguments = ["train-autoencoder", "--preset", "tiny", "--run-dir", str(run_dir)]
    assert main([*arguments, "--set", "train.max_steps=3", *extra]) == 0
    newest = list_checkpoints(run_dir / "checkpoints")[-1].path
    return load_file(str(newest / "model.safetensors"))


def test_two_runs_with_one_seed_are_bit_identical(tmp_path: Path) -> None:
    """The reproducibility defect of issue 15: same command, same seed → same model."""
    torch.manual_seed(1)  # the process's RNG state must not matter
    first = train_tiny(tmp_path / "a")
    torch.manual_seed(2)
    second = train_tiny(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train_tiny(tmp_path / "c", "--set", "train.seed=1")
    assert any(not torch.equal(first[k], other[k]) for k in first)
