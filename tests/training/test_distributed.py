"""DDP on CPU with gloo: two ranks train like one process with the same global batch, and the
collectives every rank must enter together (flags, means, gathers) agree.

The task here is deterministic (no dropout, no explicit noise), so one process, two DDP ranks
and one process with gradient accumulation see the same global batches (`BatchStream` shards
each global batch over ranks, then over accumulation steps) and should end at the same weights
up to float rounding of the gradient all-reduce.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

import unified_latents.training.loop as loop_module
from unified_latents.conditions import ConditionSource
from unified_latents.data.containers import InMemoryImages
from unified_latents.data.stream import BatchStream
from unified_latents.generation import sample_chunks
from unified_latents.objectives.terms import LossTerms
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.base_model import build_base_model
from unified_latents.runs.presets_common import tiny_training
from unified_latents.runs.presets_tiny import autoencoder_tiny, base_tiny
from unified_latents.training.checkpoint import list_checkpoints, read_latest_checkpoint
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.loop import TrainResult, train
from unified_latents.training.optim import OptimConfig

# The tiny presets' settings (EMA 0.9, no progress bar), smaller; checkpoint_every is not a
# multiple of eval_every: exercises the final save + evaluation. fp32: the ranks must agree with
# one process to rtol 1e-5, which bf16 autocast (precision=auto on a CPU with AMX) does not give.
CONFIG = replace(
    tiny_training(max_steps=8, eval_every=4),
    batch_size=16,
    log_every=1,
    checkpoint_every=3,
    precision="fp32",
)
OPTIM = OptimConfig(lr=2e-2, warmup_steps=2)
WEIGHTS = torch.tensor([0.5, -1.0, 2.0, 0.25])


@dataclass(frozen=True)
class RegressionTerms(LossTerms):
    squared_error: Tensor


class RegressionModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, pixels: Tensor, generator: torch.Generator) -> RegressionTerms:
        inputs = pixels.flatten(1).float() / 255.0  # [B, 4]
        error = (self.body(inputs).squeeze(-1) - inputs @ WEIGHTS) ** 2
        return RegressionTerms(loss=error, squared_error=error)


class RegressionTask:
    """Learn a linear function of 2×2 'images' drawn from the real rank-sharded BatchStream."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {"loss": ("loss",)}
    progress_keys = ("loss",)
    loss_normalizer = 1.0

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = RegressionModel()
        generator = torch.Generator().manual_seed(3)
        images = torch.randint(0, 256, (100, 1, 2, 2), dtype=torch.uint8, generator=generator)
        self.data = InMemoryImages(images, torch.zeros(100, dtype=torch.long), ())
        self.evaluations: list[int] = []

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchStream:
        return BatchStream(
            self.data, batch_size=micro_batch_size, seed=seed, rank=rank, world_size=world_size
        )

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        images, _ = batch
        return module(images, generator)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        return dict(means)

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        self.evaluations.append(step)
        return {"ema_weight_norm": float(sum(p.norm() for p in ema.parameters()))}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def train_losses(
    run_dir: Path, config: TrainConfig, context: DistributedContext | None
) -> TrainResult:
    return train(
        RegressionTask(),
        run_dir=run_dir,
        train_config=config,
        optim_config=OPTIM,
        config_dict={"kind": "regression"},
        device=torch.device("cpu"),
        context=context,
    )


def logged_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["split"] == "train"]


def ddp_worker(
    rank: int, store: str, run_dir: str, config: TrainConfig, fast_clock_rank: int
) -> None:
    torch.set_num_threads(1)
    # a deadlock (ranks waiting in different collectives) fails within a minute, not 30
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=2,
        timeout=timedelta(seconds=60),
    )
    try:
        context = DistributedContext(rank=rank, world_size=2, local_rank=rank)
        # The collectives the loop relies on: equal answers on every rank.
        assert context.any_each(rank == 1, False) == (True, False)
        assert context.mean_over_ranks({"loss": float(rank)}) == {"loss": 0.5}
        gathered = context.gather_objects({rank: [rank] * (rank + 1)})
        assert gathered == ([{0: [0]}, {1: [1, 1]}] if rank == 0 else None)
        if rank == fast_clock_rank:
            # This rank's clock jumps one second per reading, whatever the machine's load: a
            # real-time factor let one slow first step exhaust the budget on a busy machine.
            ticks = itertools.count()
            fast = SimpleNamespace(perf_counter=lambda: float(next(ticks)))
            loop_module.time = fast  # type: ignore[assignment]
        result = train_losses(Path(run_dir), config, context)
        record = {"step": result.step, "stopped_by": result.stopped_by, "eval": result.last_eval}
        (Path(run_dir) / f"result_rank{rank}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def run_ddp(
    tmp_path: Path, run_dir: Path, config: TrainConfig = CONFIG, fast_clock_rank: int = -1
) -> list[dict[str, Any]]:
    """Train on two gloo ranks; returns each rank's TrainResult (as a dict)."""
    store = tmp_path / f"store_{run_dir.name}_{config.max_steps}"
    # fork: the children inherit the imported modules (spawn would re-import torch, ~10 s here)
    mp.start_processes(
        ddp_worker,
        args=(str(store), str(run_dir), config, fast_clock_rank),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    return [json.loads((run_dir / f"result_rank{rank}.json").read_text()) for rank in (0, 1)]


def final_weights(run_dir: Path) -> dict[str, Tensor]:
    return read_latest_checkpoint(run_dir / "checkpoints").model


def assert_same_weights(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    single, accumulated, ddp = tmp_path / "single", tmp_path / "accumulated", tmp_path / "ddp"
    train_losses(single, CONFIG, None)
    train_losses(accumulated, replace(CONFIG, grad_accumulation=2), None)
    results = run_ddp(tmp_path, ddp)

    reference = logged_losses(single)
    assert len(reference) == CONFIG.max_steps
    # DDP logs the mean over ranks, i.e. over the same global batch
    for losses in (logged_losses(accumulated), logged_losses(ddp)):
        torch.testing.assert_close(torch.tensor(losses), torch.tensor(reference), rtol=1e-5, atol=0)
    assert_same_weights(final_weights(ddp), final_weights(single))
    assert_same_weights(final_weights(accumulated), final_weights(single))
    state = read_latest_checkpoint(ddp / "checkpoints").state
    assert state["training"]["step"] == CONFIG.max_steps and len(state["streams"]) == 2
    evals = [
        r["step"]
        for r in map(json.loads, (ddp / "metrics.jsonl").read_text().splitlines())
        if r["split"] == "eval"
    ]
    assert evals == [4, 8]  # rank 0 only, and no extra final evaluation
    assert results[0] == results[1] and results[0]["eval"]  # rank 0's results are broadcast


def test_ddp_resume_continues_exactly(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_ddp(tmp_path, straight)
    run_ddp(tmp_path, resumed, replace(CONFIG, max_steps=5))  # checkpoints at 3, final at 5
    run_ddp(tmp_path, resumed)
    assert logged_losses(resumed) == logged_losses(straight)
    assert_same_weights(final_weights(resumed), final_weights(straight))


def test_decisions_from_one_ranks_clock_are_taken_by_all_ranks(tmp_path: Path) -> None:
    """Rank 1's clock runs fast: it alone would checkpoint every few steps and run out of its
    time budget. Every rank must follow (else the others wait forever in a collective)."""
    config = replace(
        CONFIG,
        max_steps=1000,
        checkpoint_every=0,
        eval_every=0,
        checkpoint_minutes=0.1,
        time_budget_minutes=1.0,
        keep_checkpoints=100,
    )
    results = run_ddp(tmp_path, tmp_path / "run", config, fast_clock_rank=1)
    assert results[0] == results[1] and results[0]["stopped_by"] == "time_budget"
    steps = [c.step for c in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert len(steps) >= 2 and steps[-1] == results[0]["step"] < 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_torchrun_trains_the_tiny_preset_on_two_ranks(tmp_path: Path) -> None:
    """The real CLI under torchrun: rank-0 logging and checkpoints, both ranks' data state."""
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [
        str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "unified_latents.cli", "train-autoencoder", "--preset", "tiny",
        "--run-dir", str(tmp_path / "run"),
        "--set", "train.max_steps=6", "--set", "train.eval_every=4",
        "--set", "train.checkpoint_every=4", "--set", "eval.num_reconstructions=4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("stopped at step 6") == 1  # printed by rank 0 only
    state = read_latest_checkpoint(tmp_path / "run" / "checkpoints").state
    assert state["training"]["step"] == 6 and len(state["streams"]) == 2
    assert state["streams"][0] == state["streams"][1]  # equal shards, same position


def test_sampling_splits_chunks_over_ranks_without_changing_the_samples() -> None:
    """`ul sample` under torchrun: rank r makes chunks r, r+W, …, each from its own seed, so
    the gathered samples equal a single process's, whatever W (here W = 1, 2, 3; the gather
    itself is checked in `ddp_worker`)."""
    torch.manual_seed(0)
    autoencoder = build_autoencoder(autoencoder_tiny()).eval()
    config = replace(base_tiny(), eval=replace(base_tiny().eval, base_steps=2, decoder_steps=2))
    base = build_base_model(config.model, autoencoder).eval()
    conditions = ConditionSource(config.model.condition, [str(k) for k in range(10)])
    num, settings = 7, replace(config.eval, batch_size=2)  # chunks of 2, 2, 2, 1
    cond = conditions.for_classes(torch.arange(num) % 10)

    draw = partial(sample_chunks, base, autoencoder, cond, conditions, settings, num=num)

    def gathered(world_size: int, seed: int = 5) -> Tensor:
        chunks: dict[int, Tensor] = {}
        for rank in range(world_size):
            mine = draw(seed=seed, rank=rank, world_size=world_size)
            assert set(mine) == set(range(rank, 4, world_size))
            chunks |= mine
        return torch.cat([chunks[k] for k in sorted(chunks)])

    single = gathered(1)
    assert single.shape == (num, 1, 8, 8)
    for world_size in (2, 3):
        assert torch.equal(gathered(world_size), single)
    assert not torch.equal(gathered(1, seed=6), single)
