"""The measuring side of `throughput.py`: one measurement (`Job`), what it runs (`Workload`: ours
in `_ul_workloads.py`, diffusers' in `_diffusers_reference.py`), and the timers: optimizer steps
as the training loop takes them, sampling per network evaluation, peak memory, minor page faults
and the dense matmul peak."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import torch
from torch import Tensor, nn
from tqdm import tqdm

from unified_latents.conditions import ConditionSource
from unified_latents.generation import sample_images, sampling_conditions
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.networks.cpu_linear import onednn_linear
from unified_latents.runs.autoencoder import AutoencoderRunConfig, build_autoencoder
from unified_latents.runs.base_model import BaseRunConfig, build_base_model
from unified_latents.training.ema import ema_decay_at, make_ema, update_ema
from unified_latents.training.optim import build_optimizer, learning_rate, set_learning_rate
from unified_latents.training.precision import autocast
from unified_latents.training.wrapping import explain_compile_errors

SAMPLING = {False: (16, 8), True: (4, 2)}  # (images, sampler steps) by --quick
INCEPTION_BATCH = 50  # what `ul evaluate` extracts FID features with


@dataclass(frozen=True)
class Job:
    """One measurement, run in its own process."""

    stage: int  # 1 (autoencoder) or 2 (base model)
    system: str  # "ul" or "diffusers"
    precision: str
    compiled: bool
    steps: int
    warmup: int
    quick: bool
    device: str
    threads: int
    widths: tuple[int, int]  # diffusers (AutoencoderKL, UNet2DModel) base widths
    keep_freed_memory: bool  # training/cpu_allocator.py's setting, as `ul` applies it
    repeat: int = 0  # which round of `--repeats`
    profile: bool = False  # also record the top operators of a few training steps


class Workload(Protocol):
    @property
    def model(self) -> nn.Module:
        """Every trained parameter; `loss` receives it, possibly compiled."""
        ...

    @property
    def generator(self) -> torch.Generator: ...

    def loss(self, module: nn.Module, step: int) -> Tensor: ...

    def sampler(self, compiled: bool, num: int, steps: int) -> tuple[Callable[[], object], int]:
        """A call that generates `num` samples, and its network evaluations per sample."""
        ...


class LossCall(nn.Module):
    """One loss evaluation (a whole batch) as a module, for the FLOP counter."""

    def __init__(self, workload: Workload) -> None:
        super().__init__()
        self.workload = workload

    def forward(self) -> Tensor:
        return self.workload.loss(self.workload.model, 0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(
    workload: Workload, job: Job, config: AutoencoderRunConfig | BaseRunConfig
) -> dict[str, float]:
    """Seconds and minor page faults per optimizer step after warm-up, and the first step's
    (compilation) time."""
    device, model = torch.device(job.device), workload.model
    trainable = cast(nn.Module, torch.compile(model)) if job.compiled else model
    optimizer, ema = build_optimizer(model, config.optim), make_ema(model)
    parameters = [p for p in model.parameters() if p.requires_grad]
    total = job.warmup + job.steps
    first_step_seconds, start, faults = 0.0, time.perf_counter(), minor_page_faults()
    for step in tqdm(range(total), desc=f"{job.system} stage {job.stage}", leave=False):
        if step == job.warmup:
            synchronize(device)
            start, faults = time.perf_counter(), minor_page_faults()
        set_learning_rate(optimizer, learning_rate(step, config.optim, config.train.max_steps))
        optimizer.zero_grad(set_to_none=True)
        with explain_compile_errors(job.compiled):
            with autocast(device, job.precision):
                loss = workload.loss(trainable, step)
            loss.backward()
        float(torch.nn.utils.clip_grad_norm_(parameters, config.optim.grad_clip or float("inf")))
        optimizer.step()
        update_ema(ema, model, ema_decay_at(step, config.train.ema_decay))
        if step == 0:
            synchronize(device)
            first_step_seconds = time.perf_counter() - start
    synchronize(device)
    return {
        "step_seconds": (time.perf_counter() - start) / job.steps,
        "minor_page_faults_per_step": (minor_page_faults() - faults) / job.steps,
        "first_step_seconds": first_step_seconds,
    }


def profile_training(workload: Workload, job: Job, steps: int = 3) -> list[dict[str, object]]:
    """torch.profiler over `steps` forward + backward passes (eager): the 12 operators with the
    most self time, with their share of the total."""
    device = torch.device(job.device)
    with torch.profiler.profile() as profiler:
        for step in range(steps):
            with autocast(device, job.precision):
                loss = workload.loss(workload.model, step)
            loss.backward()
        synchronize(device)
    events = list(profiler.key_averages())
    total = sum(event.self_cpu_time_total for event in events) or 1.0
    top = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:12]
    return [
        {
            "op": event.key,
            "self_ms_per_step": event.self_cpu_time_total / 1e3 / steps,
            "share": event.self_cpu_time_total / total,
            "calls_per_step": event.count / steps,
        }
        for event in top
    ]


def minor_page_faults() -> int:
    """Page faults of this process served without I/O so far: mostly fresh pages the kernel
    zero-fills for newly mapped memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_sampling(workload: Workload, job: Job) -> dict[str, float]:
    """Seconds per sample per network evaluation, after one untimed (compiling) run."""
    device, (num, steps) = torch.device(job.device), SAMPLING[job.quick]
    run, evaluations = workload.sampler(job.compiled, num, steps)
    with torch.no_grad(), autocast(device, job.precision):
        run()
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "sampling_seconds_per_image_per_evaluation": seconds / (num * evaluations),
        "sampling_evaluations_per_image": float(evaluations),
    }


def time_end_to_end(
    autoencoder_config: AutoencoderRunConfig,
    base_config: BaseRunConfig,
    device: torch.device,
    images: int,
) -> list[dict[str, object]]:
    """Seconds per image of `ul sample` (generation.sample_images with the base preset's sampling
    settings, every class in turn) and of Inception features (FID in `ul evaluate`), each after
    an untimed warm-up on 4 images; the networks keep their random initial weights."""
    autoencoder = build_autoencoder(autoencoder_config).to(device).eval()
    base = build_base_model(base_config.model, autoencoder).to(device).eval()
    settings, condition = base_config.eval, base_config.model.condition
    conditions = ConditionSource(condition, [str(i) for i in range(condition.num_classes)])
    cond, _ = sampling_conditions(conditions, images, None, None)

    def sample(num: int) -> Tensor:
        chosen = None if cond is None else cond[:num]
        return sample_images(
            base, autoencoder, chosen, conditions, settings, num=num, seed=0, progress=False
        )

    def timed(run: Callable[[], Tensor]) -> tuple[Tensor, float]:
        synchronize(device)
        start = time.perf_counter()
        result = run()
        synchronize(device)
        return result, (time.perf_counter() - start) / images

    sample(min(images, 4))
    generated, sample_seconds = timed(lambda: sample(images))
    inception = InceptionFeatures(device=device)
    inception.features(generated[:4], progress=False)
    _, inception_seconds = timed(
        lambda: inception.features(generated, batch_size=INCEPTION_BATCH, progress=False)
    )
    batch = min(settings.batch_size, images)
    return [
        {
            "what": f"ul sample: {settings.base_steps} {settings.sampler} base steps, guidance "
            f"{settings.guidance:g}, {settings.decoder_steps} decoder steps, batch {batch}",
            "seconds_per_image": sample_seconds,
            "images": images,
        },
        {
            "what": f"Inception features for FID (ul evaluate), batch {INCEPTION_BATCH}",
            "seconds_per_image": inception_seconds,
            "images": images,
        },
    ]


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def matmul_peaks(
    precision: str, device: torch.device, size: int, repeats: int = 10
) -> dict[str, float]:
    """Dense matmul FLOP/s of [size × size] @ [size × size], the best of `repeats` timed products
    (best, not mean, so that other work on the machine lowers it as little as possible), per
    route: `torch.matmul` (BLAS on a CPU in fp32) and, on a CPU, the same product as a oneDNN
    1×1 convolution (networks/cpu_linear.py), which can be the faster one (AVX-512 on AMD)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    routes = {"torch.matmul": lambda: torch.matmul(a, b)}
    if device.type == "cpu":
        routes["onednn_conv_1x1"] = lambda: onednn_linear(a, b, None)
    peaks = {}
    for name, product in routes.items():
        product()  # warm-up: kernel selection, page faults
        best = float("inf")
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            product()
            synchronize(device)
            best = min(best, time.perf_counter() - start)
        peaks[name] = 2 * size**3 / best
    return peaks
