"""training/wrapping.py: the model the loop trains is the model itself on one process, and a
compiler failure becomes one CompileError only while compiling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unified_latents.training.distributed import DistributedContext
from unified_latents.training.wrapping import (
    CompileError,
    explain_compile_errors,
    trainable_model,
)


def test_one_process_trains_the_model_itself() -> None:
    model = nn.Linear(2, 2)
    assert trainable_model(model, torch.device("cpu"), DistributedContext(), compile=False) is model


def test_compiler_failures_become_one_error_only_when_compiling() -> None:
    failure = torch._dynamo.exc.TorchDynamoException("inductor: no C++ compiler\nlong trace")
    expected = r"torch.compile failed \(inductor: no C\+\+ compiler\)"
    with pytest.raises(CompileError, match=expected), explain_compile_errors(compiling=True):
        raise failure
    with (
        pytest.raises(torch._dynamo.exc.TorchDynamoException),
        explain_compile_errors(compiling=False),
    ):
        raise failure
