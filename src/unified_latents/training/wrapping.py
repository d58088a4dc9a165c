"""The model as the training loop calls it: wrapped in DDP across ranks and in torch.compile when
asked, with compiler failures turned into one actionable error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from unified_latents.training.distributed import DistributedContext, process_group_active


class CompileError(RuntimeError):
    """`train.compile=true` but torch.compile failed (e.g. no working C++ compiler on CPU)."""


@contextlib.contextmanager
def explain_compile_errors(compiling: bool) -> Iterator[None]:
    """torch.compile works lazily, inside the first forward/backward: turn its failures into one
    actionable error instead of a long traceback from deep inside the compiler."""
    try:
        yield
    except torch._dynamo.exc.TorchDynamoException as error:
        if not compiling:
            raise
        lines = str(error).strip().splitlines()
        raise CompileError(
            f"torch.compile failed ({lines[0] if lines else type(error).__name__}); train "
            "without it (--set train.compile=false) or fix the compiler toolchain (on CPU, "
            "inductor needs a working C++ compiler such as gcc; see the CXX variable)"
        ) from error


def trainable_model(
    model: nn.Module, device: torch.device, context: DistributedContext, *, compile: bool
) -> nn.Module:
    """`model` as the loop's forward and backward call it: DDP when a process group is active (a
    1-process group too, as gpu_check uses), then torch.compile when `compile`. The parameters,
    EMA and checkpoints stay those of `model` itself."""
    trainable = model
    if context.enabled or process_group_active():
        device_ids = [device.index] if device.type == "cuda" else None
        trainable = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if compile:
        trainable = torch.compile(trainable)  # type: ignore[assignment]
    return trainable
