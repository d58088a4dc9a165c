"""Training and sampling throughput of the default presets, side by side with diffusers (issue 5).

    pip install -e '.[bench]'   # diffusers, for this benchmark only
    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/throughput.py [--steps 20] [--compile]

For the default stage-1 (`fashion-mnist` autoencoder) and stage-2 (`fashion-mnist` base) presets,
and for the closest diffusers equivalent sized to similar forward FLOPs per image
(`_diffusers_reference.py`), in fp32 and bf16 (autocast, as the training loop does it), eager and,
with `--compile`, torch.compile'd:

- training images/s over `--steps` optimizer steps after `--warmup` steps: ours through the
  project's task `loss` code; both with the loop's AdamW, warm-up, clipping and EMA update
  (training/loop.py's step without its logging and checkpoints);
- forward FLOPs per image (metrics/flops.py), achieved FLOP/s = 3 × forward × images/s, and
  utilisation = achieved / the dense matmul peak of that precision, measured in the same run as
  the best of repeated large products with the same thread count, by the faster of two routes
  (`torch.matmul`, and on a CPU a oneDNN 1×1 convolution: networks/cpu_linear.py; both kept);
- sampling seconds per image per network evaluation: our decoder (stage 1) and guided base model
  (stage 2) through the project's samplers; diffusers' VAE decode and guided UNet + DDPMScheduler;
- peak memory: the process's max RSS (CPU) or torch.cuda.max_memory_allocated (CUDA), after
  training and before sampling; and the minor page faults per timed training step;
- host memory: our jobs keep freed memory in the process as every `ul` command does
  (training/cpu_allocator.py); diffusers' jobs run with the C library's defaults, as a plain
  diffusers script would, unless `--diffusers-keeps-freed-memory` gives them the same setting.
  Each row records which (`keeps_freed_memory`);
- with `--compile`, the wall time of the first compiled step (compilation included). On CPU each
  compilation takes minutes (about 3–4 for the default presets), twice per measurement (training
  and sampling), so a `--compile` run takes the better part of an hour or more.

Precision follows the hardware (issue 18): bf16 is measured only where the device runs it
natively (training/precision.py's detection: CUDA with bf16 tensor cores, CPUs with
AVX512-BF16/AMX), unless `--include-emulated-bf16` asks for it; each comparison records
`native_precision`. `--repeats R` (default 3) measures every workload R times, interleaved (ours
and diffusers alternate which goes first), and each comparison is the median of the R per-repeat
ratios with its min and max; with the measured matmul peak it also states whether issue 18's target
holds (ours ≥ 1.5× diffusers, or ≥ 80 % of the peak where 1.5× diffusers would exceed it).

Also, once per repeat, in its own process: end-to-end `ul sample` seconds per image with the base
preset's sampling settings (class-conditional, guidance, base + decoder steps) and Inception
feature extraction seconds per image (what `ul evaluate` spends on FID), both on randomly
initialised preset networks (their cost does not depend on the weights). `--profile` adds
torch.profiler's top operators of one of our training steps per workload.

Each measurement runs in a fresh process, so its max RSS and compile caches are its own (the
timers and the `Job` record are `_throughput_timing.py`'s). Writes JSON (`--out`) and prints a
markdown table. Not a test: timings depend on the machine and on whatever else runs on it; the
ratios within one run are the comparable part.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import platform
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import _diffusers_reference as reference
from _provenance import REPO_ROOT
from _throughput_report import comparisons, cpu_name, end_to_end_summary, markdown
from _throughput_timing import (
    SAMPLING,
    Job,
    LossCall,
    Workload,
    matmul_peaks,
    peak_memory_mib,
    profile_training,
    time_end_to_end,
    time_sampling,
    time_training,
)
from _ul_workloads import ULStage1, ULStage2, random_latent_cache
from unified_latents.data.datasets import load_split
from unified_latents.data.stream import BatchStream
from unified_latents.metrics.flops import forward_flops, forward_flops_per_example
from unified_latents.networks.cpu_linear import cpu_matmul
from unified_latents.runs.autoencoder import (
    AutoencoderRunConfig,
    AutoencoderTask,
    build_autoencoder,
)
from unified_latents.runs.base_model import BaseRunConfig, BaseTask, build_base_model
from unified_latents.runs.presets import autoencoder_fashion_mnist, base_fashion_mnist
from unified_latents.runs.presets_tiny import autoencoder_tiny, base_tiny
from unified_latents.training.cpu_allocator import keep_freed_memory
from unified_latents.training.precision import native_bf16

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "throughput.json"
PRECISIONS = ("fp32", "bf16")
MATMUL_SIZE = {False: 2048, True: 512}  # by --quick


def presets(quick: bool) -> tuple[AutoencoderRunConfig, BaseRunConfig]:
    if quick:
        return autoencoder_tiny(), base_tiny()
    return autoencoder_fashion_mnist(), base_fashion_mnist()


def geometry(autoencoder: AutoencoderRunConfig, base: BaseRunConfig) -> reference.Geometry:
    channels, size, _ = build_autoencoder(autoencoder).latent_shape
    data = autoencoder.data
    classes = base.model.condition.num_classes
    return reference.Geometry(data.channels, data.image_size, channels, size, classes)


def build_workload(job: Job, workdir: Path) -> Workload:
    device = torch.device(job.device)
    generator = torch.Generator(device=device).manual_seed(0)
    autoencoder_config, base_config = presets(job.quick)
    if job.system == "ul" and job.stage == 1:
        return ULStage1(AutoencoderTask(autoencoder_config), generator)
    if job.system == "ul":
        autoencoder = build_autoencoder(autoencoder_config)
        random_latent_cache(workdir, autoencoder.latent_shape, base_config)
        return ULStage2(BaseTask(base_config, autoencoder, workdir, device), generator)
    shape = geometry(autoencoder_config, base_config)
    config = autoencoder_config if job.stage == 1 else base_config
    data = load_split(autoencoder_config.data, "train")
    stream = BatchStream(data, batch_size=config.train.batch_size, seed=0)
    vae_width, unet_width = job.widths
    if job.stage == 1:
        return reference.stage1(shape, vae_width, stream, generator)
    guidance = base_config.eval.guidance
    return reference.stage2(
        shape, unet_width, vae_width, config.train.batch_size, stream, generator, guidance
    )


def run_job(job: Job) -> dict[str, Any]:
    torch.set_num_threads(job.threads)
    kept = keep_freed_memory() if job.keep_freed_memory else False
    autoencoder_config, base_config = presets(job.quick)
    config = autoencoder_config if job.stage == 1 else base_config
    batch_size = config.train.batch_size
    with tempfile.TemporaryDirectory() as workdir:
        workload = build_workload(job, Path(workdir))
        model_name = type(getattr(workload.model, "vae", workload.model)).__name__
        forward = forward_flops(LossCall(workload)) / batch_size
        timing = time_training(workload, job, config)
        memory = peak_memory_mib(torch.device(job.device))
        sampling = time_sampling(workload, job)
        profile = profile_training(workload, job) if job.profile else None
    images_per_second = batch_size / timing["step_seconds"]
    return {
        "repeat": job.repeat,
        "stage": job.stage,
        "system": job.system,
        "model": model_name,
        "precision": job.precision,
        "mode": "compiled" if job.compiled else "eager",
        "batch_size": batch_size,
        "parameters": sum(p.numel() for p in workload.model.parameters()),
        "forward_flops_per_image": forward,
        "images_per_second": images_per_second,
        "achieved_flops_per_second": 3 * forward * images_per_second,
        "peak_memory_mib": memory,
        "keeps_freed_memory": kept,
        **timing,
        "compile_seconds": timing["first_step_seconds"] if job.compiled else None,
        **sampling,
        **({} if profile is None else {"profile_top_ops": profile}),
    }


def end_to_end_job(quick: bool, device: str, threads: int, images: int) -> list[dict[str, Any]]:
    """`ul sample`'s and FID's seconds per image on the preset networks (random weights)."""
    torch.set_num_threads(threads)
    keep_freed_memory()
    autoencoder_config, base_config = presets(quick)
    return time_end_to_end(autoencoder_config, base_config, torch.device(device), images)


def diffusers_widths(quick: bool) -> dict[str, dict[str, float]]:
    """AutoencoderKL and UNet2DModel widths whose forward FLOPs per image are closest to our
    stage-1 loss (encoder + prior + decoder) and stage-2 base model, counted the same way."""
    autoencoder_config, base_config = presets(quick)
    shape = geometry(autoencoder_config, base_config)
    autoencoder = build_autoencoder(autoencoder_config)
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(2, shape.image_channels, shape.image_size, shape.image_size)
    ours_stage1 = forward_flops_per_example(autoencoder, x, generator)
    base = build_base_model(base_config.model, autoencoder)
    z = torch.zeros(2, *autoencoder.latent_shape)
    labels = torch.zeros(2, dtype=torch.long)
    ours_stage2 = forward_flops_per_example(base, z, labels, generator)
    vae = reference.matched_width(
        lambda w: reference.vae_flops_per_image(shape, w), ours_stage1, reference.VAE_WIDTH_STEP
    )
    unet = reference.matched_width(
        lambda w: reference.unet_flops_per_image(shape, w), ours_stage2, reference.UNET_WIDTH_STEP
    )
    return {
        "autoencoder_kl": {"width": vae[0], "flops": vae[1], "ours_flops": ours_stage1},
        "unet_2d": {"width": unet[0], "flops": unet[1], "ours_flops": ours_stage2},
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--quick", action="store_true", help="tiny presets: a smoke check")
    parser.add_argument(
        "--diffusers-keeps-freed-memory",
        action="store_true",
        help="give the diffusers jobs the host-memory setting our jobs have (cpu_allocator.py)",
    )
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="times each workload is measured, interleaved"
    )
    parser.add_argument(
        "--include-emulated-bf16",
        action="store_true",
        help="also measure bf16 where the device only emulates it (slow: 10× or more)",
    )
    parser.add_argument(
        "--end-to-end-images", type=int, default=50, help="images per end-to-end timing (0: skip)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="record the top operators of our training steps"
    )
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < (1 if args.compile else 0):
        parser.error("--steps must be ≥ 1 and --warmup ≥ 0 (≥ 1 with --compile)")
    if args.repeats < 1 or args.end_to_end_images < 0:
        parser.error("--repeats must be ≥ 1 and --end-to-end-images ≥ 0")
    return args


def measured_precisions(native: bool, include_emulated: bool) -> tuple[str, ...]:
    """fp32 always; bf16 where the device runs it natively or when asked to."""
    return PRECISIONS if native or include_emulated else ("fp32",)


def in_own_process(function: Any, *arguments: Any) -> Any:
    """`function(*arguments)` in a fresh spawned process (no forked torch state): its max RSS
    and caches are its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(function, *arguments).result()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16_native, bf16_reason = native_bf16(device)
    precisions = measured_precisions(bf16_native, args.include_emulated_bf16)
    tqdm.write("sizing the diffusers models to our FLOPs per image …")
    start = time.perf_counter()
    sizes = diffusers_widths(args.quick)
    sizing_seconds = time.perf_counter() - start
    widths = (int(sizes["autoencoder_kl"]["width"]), int(sizes["unet_2d"]["width"]))
    # Only the measured precisions: an emulated bf16 peak costs ~10 min (11 × 17 GFLOP, 0.3 GFLOP/s)
    peak_routes = {p: matmul_peaks(p, device, MATMUL_SIZE[args.quick]) for p in precisions}
    peak = {p: max(routes.values()) for p, routes in peak_routes.items()}  # the faster route
    template = Job(1, "ul", "fp32", False, args.steps, args.warmup, args.quick, args.device,
                   args.threads, widths, keep_freed_memory=True)  # fmt: skip
    diffusers_memory = args.diffusers_keeps_freed_memory
    jobs = [
        replace(
            template,
            stage=stage,
            system=system,
            precision=precision,
            compiled=compiled,
            keep_freed_memory=system == "ul" or diffusers_memory,
            repeat=repeat,
            # eager steps only: a compiled job's profile would repeat the eager one's
            profile=args.profile and system == "ul" and repeat == 0 and not compiled,
        )
        for repeat in range(args.repeats)
        for stage in (1, 2)
        for compiled in ((False, True) if args.compile else (False,))
        for precision in precisions
        # interleaved, so load changes hit both alike; who goes first alternates by repeat
        for system in (("ul", "diffusers") if repeat % 2 == 0 else ("diffusers", "ul"))
    ]
    results, end_to_end = [], []
    for index, job in enumerate(tqdm(jobs, desc="measurements")):
        result = in_own_process(run_job, job)
        result["utilisation"] = result["achieved_flops_per_second"] / peak[job.precision]
        results.append(result)
        last_of_repeat = index + 1 == len(jobs) or jobs[index + 1].repeat != job.repeat
        if last_of_repeat and args.end_to_end_images:
            timings = in_own_process(
                end_to_end_job, args.quick, args.device, args.threads, args.end_to_end_images
            )
            end_to_end += [{"repeat": job.repeat, **timing} for timing in timings]
    native = {"fp32": True, "bf16": bf16_native}
    report = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "device": args.device,
            "threads": args.threads,
            "bf16_native": bf16_native,
            "bf16_reason": bf16_reason,
            "cpu_matmul": cpu_matmul() if device.type == "cpu" else None,
            "torch": torch.__version__,
            "diffusers": reference.DIFFUSERS_VERSION,
            "python": platform.python_version(),
        },
        "settings": {
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "precisions": list(precisions),
            "quick": args.quick,
            "sampling_images_and_steps": SAMPLING[args.quick],
            "end_to_end_images": args.end_to_end_images,
            "diffusers_keeps_freed_memory": args.diffusers_keeps_freed_memory,
        },
        "matmul_peak_flops_per_second": peak,
        "matmul_peak_by_route": peak_routes,
        "diffusers_sizing": {**sizes, "seconds": sizing_seconds},
        "results": results,
        "comparisons": comparisons(results, native, peak),
        "end_to_end": end_to_end_summary(end_to_end),
        "end_to_end_per_repeat": end_to_end,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
