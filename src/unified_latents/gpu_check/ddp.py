"""The distributed part of the GPU check, run under `torchrun --nproc_per_node 1`: join the
process group (NCCL on CUDA, gloo for --cpu-smoke), train ONE step through the shared loop with
the model wrapped in DistributedDataParallel, let the loop write its checkpoint, and read the
checkpoint back on the CPU into a freshly built model. The model has the paper layout at tiny
widths (gpu_check/synthetic.py): the point is the communication and checkpoint path, which a
paper-size model would only slow down (6 GB of checkpoint per step)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from unified_latents.gpu_check.synthetic import SyntheticAutoencoderTask, check_configs
from unified_latents.runs.autoencoder import build_autoencoder
from unified_latents.runs.directory import config_record
from unified_latents.training.checkpoint import read_latest_checkpoint
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.loop import train

RESULT_FILE = "ddp.json"


def ddp_worker(out: Path, smoke: bool, batch_size: int) -> dict[str, Any]:
    """Runs inside torchrun; writes OUT/ddp.json on rank 0."""
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = not smoke and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    dist.init_process_group(backend=backend)
    context = DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)
    autoencoder, _ = check_configs(smoke=True)  # tiny widths: this checks NCCL, DDP, checkpoints
    config = replace(
        autoencoder,
        data=replace(autoencoder.data, num_workers=0),
        train=replace(
            autoencoder.train, batch_size=batch_size * world_size, max_steps=1, eval_every=0,
            checkpoint_every=1, progress=False, device=str(device),
        ),
    )  # fmt: skip
    task = SyntheticAutoencoderTask(config)
    run_dir = out / "run"
    start = time.perf_counter()
    result = train(
        task, run_dir=run_dir, train_config=config.train, optim_config=config.optim,
        config_dict=config_record("autoencoder", config), device=device, context=context,
    )  # fmt: skip
    reduced = torch.ones(1, device=device)
    dist.all_reduce(reduced)
    record: dict[str, Any] = {}
    if context.is_main:
        loaded = read_latest_checkpoint(run_dir / "checkpoints", with_optimizer=False)
        fresh = build_autoencoder(config)
        fresh.load_state_dict(loaded.ema)  # tensors were saved from the GPU, loaded on CPU
        on_cpu = all(t.device.type == "cpu" for t in fresh.state_dict().values())
        record = {
            "ok": result.step == 1 and task.wrapped_as == "DistributedDataParallel" and on_cpu,
            "backend": backend,
            "world_size": world_size,
            "device": str(device),
            "step": result.step,
            "wrapped_as": task.wrapped_as,
            "all_reduce_sum": float(reduced.item()),
            "checkpoint": str(loaded.path),
            "loaded_on_cpu": on_cpu,
            "seconds": time.perf_counter() - start,
        }
        (out / RESULT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    dist.destroy_process_group()
    return record


def launch_ddp(out: Path, smoke: bool, batch_size: int, timeout: float) -> dict[str, Any]:
    """Start `torchrun --standalone --nproc_per_node 1` on `ddp_worker`; its result or the error."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
        "-m", "unified_latents.gpu_check", "--ddp-worker", "--out", str(out),
        "--ddp-batch-size", str(batch_size), *(["--cpu-smoke"] if smoke else []),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"torchrun did not finish in {timeout:.0f} s"}
    path = out / RESULT_FILE
    if done.returncode != 0 or not path.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"ok": False, "error": f"torchrun exited {done.returncode}: {' | '.join(tail)}"}
    record: dict[str, Any] = json.loads(path.read_text())
    return record
