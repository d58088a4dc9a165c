"""PyTorch's own distributed stack: one process per device, launched by `torchrun`.

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything runs in one process.
NCCL on CUDA, gloo on CPU. Rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_gather_objects(self, value: Any) -> list[Any]:
        if not self.enabled:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast_object(self, value: Any) -> Any:
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any rank (e.g. a stop request)."""
        return self.any_each(flag)[0]

    def any_each(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over ranks, in one collective: every rank then takes the same branch
        (a rank that breaks out of the loop alone would leave the others waiting forever)."""
        if not self.enabled:
            return flags
        tensor = torch.tensor(
            [1.0 if flag else 0.0 for flag in flags], device=self.device_for_collectives()
        )
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tuple(bool(value > 0) for value in tensor.tolist())

    def mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over ranks (a NaN/inf on any rank makes the mean non-finite)."""
        if not self.enabled:
            return values
        keys = sorted(values)
        tensor = torch.tensor(
            [values[key] for key in keys], dtype=torch.float64, device=self.device_for_collectives()
        )
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        means = (value / self.world_size for value in tensor.tolist())
        return dict(zip(keys, means, strict=True))

    def gather_objects(self, value: Any) -> list[Any] | None:
        """Every rank's `value` on rank 0 (in rank order); None on the other ranks."""
        if not self.enabled:
            return [value]
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def run_on_main(self, function: Callable[[], object]) -> None:
        """Run `function` on rank 0 while the others wait; if it raises, every rank raises the
        same error, so all ranks stop with one clear message (none waits in a barrier)."""
        error: Exception | None = None
        if self.is_main:
            try:
                function()
            except Exception as caught:
                error = caught
        shared = self.broadcast_object(None if error is None else error)
        if error is not None:
            raise error
        if shared is not None:
            raise shared

    def device_for_collectives(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def process_group_active() -> bool:
    """Whether this process has joined a torch.distributed process group (of any size)."""
    return dist.is_available() and dist.is_initialized()


def init_distributed(device_kind: str) -> DistributedContext:
    """Join the process group if launched by torchrun (idempotent)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def resolve_device(name: str, context: DistributedContext | None = None) -> torch.device:
    """'auto' → CUDA if available else CPU; on CUDA each rank uses its LOCAL_RANK device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", context.local_rank if context else 0)
    return device
