"""`ul demo`: the whole job on the default data in a bounded time.

stage 1 (time-budgeted) → reconstructions → latent cache → stage 2 (time-budgeted) →
class-conditional samples → `report.md` with the measured figures. Every step is resumable:
re-running the command continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from unified_latents.commands.reconstruct import reconstruct
from unified_latents.commands.sample import sample
from unified_latents.commands.train import train
from unified_latents.runs.directory import latest_training_state
from unified_latents.runs.latents import encode
from unified_latents.training.metrics_log import read_metrics


def last_eval(run_dir: Path) -> dict[str, float]:
    evals = [record for record in read_metrics(run_dir) if record.get("split") == "eval"]
    return evals[-1] if evals else {}


def last_train(run_dir: Path) -> dict[str, float]:
    records = [record for record in read_metrics(run_dir) if record.get("split") == "train"]
    return records[-1] if records else {}


def training_minutes(run_dir: Path) -> float:
    """Training time accumulated over every invocation that trained the run (from its newest
    checkpoint), so a resumed demo still reports what its models cost."""
    latest = latest_training_state(run_dir)
    return float("nan") if latest is None else latest[1]["elapsed_seconds"] / 60


def demo(
    out: Path,
    *,
    autoencoder_minutes: float,
    base_minutes: float,
    num_samples: int,
    preset: str = "fashion-mnist",
    device_name: str = "auto",
) -> int:
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, begin: float) -> None:
        timings[name] = time.perf_counter() - begin

    ae_dir, base_dir = out / "autoencoder", out / "base"
    begin = time.perf_counter()
    train(
        "autoencoder",
        preset,
        [
            f"train.time_budget_minutes={autoencoder_minutes}",
            "train.max_steps=1000000",
            f"train.device={device_name}",
        ],
        ae_dir,
    )
    timed("stage 1 training", begin)
    begin = time.perf_counter()
    reconstruct(
        ae_dir,
        num=256,
        steps=None,
        sampler=None,
        seed=0,
        device_name=device_name,
        out=out / "reconstructions",
    )
    timed("reconstruction of 256 images", begin)
    begin = time.perf_counter()
    encode(ae_dir, device_name=device_name)
    timed("latent cache (whole dataset)", begin)
    begin = time.perf_counter()
    train(
        "base",
        preset,
        [
            f"autoencoder_run={ae_dir}",
            f"train.time_budget_minutes={base_minutes}",
            "train.max_steps=1000000",
            f"train.device={device_name}",
        ],
        base_dir,
    )
    timed("stage 2 training", begin)
    begin = time.perf_counter()
    sample(
        base_dir,
        num=num_samples,
        class_label=None,
        prompt=None,
        overrides={},
        seed=0,
        device_name=device_name,
        out=out / "samples",
    )
    timed(f"sampling {num_samples} images", begin)
    timings["total"] = time.perf_counter() - start
    report = write_report(out, ae_dir, base_dir, timings)
    print(f"demo finished in {timings['total'] / 60:.1f} min; report: {report}")
    return 0


def write_report(out: Path, ae_dir: Path, base_dir: Path, timings: dict[str, float]) -> Path:
    ae_eval, ae_train = last_eval(ae_dir), last_train(ae_dir)
    base_eval = last_eval(base_dir)
    recon = json.loads((out / "reconstructions" / "reconstruct.json").read_text())
    samples = json.loads((out / "samples" / "sample.json").read_text())
    lines = [
        "# unified-latents demo report",
        "",
        "Small-scale CPU run on Fashion-MNIST (32×32, zero-padded). Not comparable to the "
        "paper's ImageNet numbers.",
        "",
        "## Stage 1: UL autoencoder",
        f"- steps trained: {ae_eval.get('step')}; training throughput "
        f"{ae_train.get('images_per_second', float('nan')):.1f} images/s (last log window)",
        "- held-out rate (prior bound): "
        f"{ae_eval.get('bits_per_pixel', float('nan')):.4f} bits/pixel "
        f"({ae_eval.get('bits_per_image', float('nan')):.1f} bits/image)",
        f"- reconstructions of {recon['num_images']} held-out images "
        f"({recon['decoder_steps']} {recon['sampler']} decoder steps): "
        f"PSNR {recon['psnr_db']:.2f} dB, SSIM {recon['ssim']:.4f}",
        "- grid (odd rows originals, even rows reconstructions): `reconstructions/grid.png`",
        "",
        "## Stage 2: class-conditional base model",
        f"- steps trained: {base_eval.get('step')}",
        f"- held-out latent bits/pixel: base model ELBO "
        f"{base_eval.get('base_elbo_bits_per_pixel', float('nan')):.4f}, stage-1 prior bound "
        f"{base_eval.get('prior_bound_bits_per_pixel', float('nan')):.4f}",
        f"- {samples['num']} samples (classes 0–9 in turn: one column per class), guidance "
        f"{samples['guidance']}, {samples['base_steps']} base + {samples['decoder_steps']} "
        f"decoder {samples['sampler']} steps: {samples['seconds_per_image']:.3f} s/image",
        "- grid: `samples/grid.png`; arrays: `samples/samples.npz`",
        "",
        "## Time",
        f"- training time in the checkpoints (all invocations): stage 1 "
        f"{training_minutes(ae_dir):.2f} min, stage 2 {training_minutes(base_dir):.2f} min",
        "- wall time of this invocation (resumed steps are skipped, so a re-run is shorter):",
        *[f"  - {name}: {seconds / 60:.1f} min" for name, seconds in timings.items()],
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
