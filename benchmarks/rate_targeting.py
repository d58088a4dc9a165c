"""Issue 19: does `--target-bits-per-pixel` land on its target, and what does the controller cost?

    python benchmarks/rate_targeting.py train --work-dir /work/rate --targets 0.04,0.1,0.19 \\
        [--fixed 2.0] [--steps 10000] [--jobs 2]
    python benchmarks/rate_targeting.py report --work-dir /work/rate [--num 1000] \\
        [--compare /work/exp14/runs/stage1/ul-lf3.0 ...]

`train`: one UL autoencoder run (`--preset`, default `fashion-mnist`) per target
(WORK/runs/target-R) and per fixed loss factor (WORK/runs/fixed-C), `--steps` optimizer steps
each, logs in WORK/logs; finished runs are skipped, stopped ones resume.
Run it from a `git worktree` of a fixed commit.

`report`: every run under WORK/runs and each `--compare` run (an earlier run of the same preset
and steps, e.g. a fixed c_lf or an uncalibrated target; in the details and the plot, not in the
rows) measured alike on the first N test images (`_curve_measure.reconstruction`,
32 ancestral steps from z_0): held-out bits/pixel (the prior's bound, one noise draw each), PSNR
of one decoder sample and of the mean of 8 (first 256 images), SSIM, rFID@N; from the training
log the settled c_lf, the controller's regulated rate ρ·r̄ (r̄: running training rate, ρ: the
held-out calibration, 1 for runs from before it) and the step from which it stays within ±5 % of
the target. Writes docs/results/rate_targeting.json (rows: target_bits_per_pixel,
final_bits_per_pixel, loss_factor, psnr), rate_targeting_details.json and rate_targeting.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from _curve_measure import Reference, reconstruction
from _tables_jobs import Job, run_jobs, say
from _tables_plan import read_json
from flops_curve import newest_step, train_job
from unified_latents.config import from_dict
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import read_run_record
from unified_latents.training.metrics_log import read_metrics

CHECKOUT = Path(__file__).resolve().parents[1]
ROW_KEYS = ("target_bits_per_pixel", "final_bits_per_pixel", "loss_factor", "psnr")
TOLERANCE = 0.05  # the goal: within ±5 % of the target


def run_name(target: float | None = None, loss_factor: float | None = None) -> str:
    return f"target-{target:g}" if target is not None else f"fixed-{loss_factor:g}"


def train_arguments(
    run_dir: Path, preset: str, steps: int, setting: list[str], eval_images: int
) -> list[str]:
    """The training command of one run; its evaluations (which calibrate the controller) measure
    the held-out rate on `eval_images` test images (the presets' 256 read ~4 % low vs 1,000)."""
    return [
        "train-autoencoder",
        "--preset",
        preset,
        "--run-dir",
        str(run_dir),
        *setting,
        "--set",
        f"train.max_steps={steps}",
        "--set",
        f"eval.num_images={eval_images}",
        "--set",
        "train.progress=false",
    ]


def train(args: argparse.Namespace) -> int:
    settings = {
        run_name(target=t): ["--target-bits-per-pixel", str(t)] for t in floats(args.targets)
    }
    settings |= {
        run_name(loss_factor=c): ["--set", f"model.loss_factor={c}"] for c in floats(args.fixed)
    }
    jobs = {}
    for name, setting in settings.items():
        run_dir = args.work_dir / "runs" / name
        arguments = train_arguments(run_dir, args.preset, args.steps, setting, args.eval_images)
        action = partial(train_job, args.work_dir, run_dir, args.steps, arguments, name)
        jobs[name] = Job(name, (), action)
    status = run_jobs(jobs, args.jobs)
    return 0 if all(value == "ok" for value in status.values()) else 1


def floats(text: str) -> list[float]:
    return [float(item) for item in text.split(",") if item]


def trajectory(run_dir: Path) -> dict[str, list[Any]]:
    """From the training log: c_lf, r̄ and the held-out ratio ρ (1 for runs from before the
    calibration) per logged training step, the regulated estimate ρ·r̄, held-out bits per eval."""
    rows = read_metrics(run_dir)
    train = [r for r in rows if r.get("split") == "train" and "loss_factor" in r]
    evals = [r for r in rows if r.get("split") == "eval" and "bits_per_pixel" in r]
    return {
        "train_step": [r["step"] for r in train],
        "loss_factor": [r["loss_factor"] for r in train],
        "rate_average_bits_per_pixel": [r["rate_average_bits_per_pixel"] for r in train],
        "slow_rate_average_bits_per_pixel": [
            r.get("rate_slow_average_bits_per_pixel") for r in train
        ],
        "held_out_ratio": [r.get("rate_held_out_ratio", 1.0) for r in train],
        "regulated_bits_per_pixel": [
            r["rate_average_bits_per_pixel"] * r.get("rate_held_out_ratio", 1.0) for r in train
        ],
        "eval_step": [r["step"] for r in evals],
        "eval_bits_per_pixel": [r["bits_per_pixel"] for r in evals],
    }


def settling_step(steps: list[int], rates: list[float], target: float) -> int | None:
    """The first logged step from which the rate stays within ±5 % of `target` (None: never)."""
    settled = None
    for step, rate in zip(steps, rates, strict=True):
        inside = rate >= 0 and abs(rate - target) <= TOLERANCE * target
        settled = (settled if settled is not None else step) if inside else None
    return settled


def measure(run_dir: Path, reference: Reference, num: int, cache: Path) -> dict[str, Any]:
    """The run's newest checkpoint measured on the first `num` test images (cached by step)."""
    step = newest_step(run_dir)
    cached = read_json(cache)
    if cached is not None and cached.get("stage1_step") == step:
        return cached
    say(f"▶ measuring {run_dir} at step {step}")
    record = reconstruction(
        run_dir, reference, num=num, steps=32, decoder_input="noisy", seed=0, psnr_samples=8
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(record, indent=2) + "\n")
    return record


def cache_name(run_dir: Path, work_dir: Path) -> str:
    """The measurement cache's name: the run's name for runs of WORK/runs, and for `--compare`
    runs elsewhere their whole path (two runs named alike, e.g. target-0.04 of two sets, must
    not share a cached measurement)."""
    if run_dir.resolve().parent == (work_dir / "runs").resolve():
        return f"runs-{run_dir.name}"
    return "compare" + str(run_dir.resolve()).replace("/", "-")


def describe(run_dir: Path, reference: Reference, num: int, work_dir: Path) -> dict[str, Any]:
    config = from_dict(AutoencoderRunConfig, read_run_record(run_dir)["run"])
    target = config.model.target_bits_per_pixel or None  # 0: a fixed c_lf
    history = trajectory(run_dir)
    cache = work_dir / "evals" / f"{cache_name(run_dir, work_dir)}.json"
    measured = measure(run_dir, reference, num, cache)
    final_factor = history["loss_factor"][-1] if history["loss_factor"] else None
    result = {
        "run": str(run_dir),
        "target_bits_per_pixel": target,
        "loss_factor": final_factor if target is not None else config.model.loss_factor,
        "initial_loss_factor": config.model.loss_factor,
        "measured": measured,
        "trajectory": history,
    }
    if target is not None:
        steps, rates = history["train_step"], history["regulated_bits_per_pixel"]
        result["settling_step"] = settling_step(steps, rates, target)
        result["relative_error"] = measured["bits_per_pixel"] / target - 1
    return result


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        history, target = run["trajectory"], run["target_bits_per_pixel"]
        label = f"target {target:g}" if target is not None else f"fixed c_lf {run['loss_factor']:g}"
        if target is not None and set(history["held_out_ratio"]) <= {1.0}:
            label += ", ρ = 1 (uncalibrated)"
        style = "-" if target is not None else ":"
        if target is not None:
            left.plot(history["train_step"], history["loss_factor"], style, label=label)
            regulated = [r if r > 0 else float("nan") for r in history["regulated_bits_per_pixel"]]
            (line,) = right.plot(history["train_step"], regulated, style, alpha=0.5)  # r̄ < 0: unset
            right.axhline(target, color=line.get_color(), lw=0.8, ls="--")
            color = line.get_color()
        else:
            left.axhline(run["loss_factor"], ls=style, color="grey", lw=0.8)
            color = "grey"
        right.plot(history["eval_step"], history["eval_bits_per_pixel"], "o" + style,
                   color=color, ms=3, label=label)  # fmt: skip
    left.set(xlabel="training step", ylabel="c_lf (controller)", yscale="log")
    left.set_title("loss factor set by the controller (dotted: fixed runs)")
    right.set(xlabel="training step", ylabel="bits/pixel", yscale="log")
    right.set_title("rate: ρ·r̄ (lines), held-out eval (dots), target (dashed)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle("Rate targeting on Fashion-MNIST (small scale, CPU)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(args: argparse.Namespace) -> int:
    run_dirs = sorted(p for p in (args.work_dir / "runs").glob("*") if newest_step(p) > 0)
    run_dirs += args.compare
    if not run_dirs:
        raise SystemExit(f"no trained run under {args.work_dir / 'runs'}: run `train` first")
    data = from_dict(AutoencoderRunConfig, read_run_record(run_dirs[0])["run"]).data
    reference = Reference(InceptionFeatures(args.inception, "cpu"), data)
    runs = [describe(run_dir, reference, args.num, args.work_dir) for run_dir in run_dirs]
    compared = {str(path) for path in args.compare}  # in the details, not the rows
    targeted = [
        run
        for run in runs
        if run["target_bits_per_pixel"] is not None and run["run"] not in compared
    ]
    rows = [
        {
            "target_bits_per_pixel": run["target_bits_per_pixel"],
            "final_bits_per_pixel": run["measured"]["bits_per_pixel"],
            "loss_factor": run["loss_factor"],
            "psnr": run["measured"]["psnr"],
        }
        for run in sorted(targeted, key=lambda r: r["target_bits_per_pixel"])
    ]
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "rate_targeting.json").write_text(json.dumps(rows, indent=2) + "\n")
    details = {"num": args.num, "tolerance": TOLERANCE, "runs": runs}
    (args.results / "rate_targeting_details.json").write_text(json.dumps(details, indent=2) + "\n")
    plot(runs, args.results / "rate_targeting.png")
    for run in runs:
        measured = run["measured"]
        say(
            f"{Path(run['run']).name}: target {run['target_bits_per_pixel']}, c_lf "
            f"{run['loss_factor']:.3g}, {measured['bits_per_pixel']:.4f} bits/px, PSNR "
            f"{measured['psnr']:.2f} dB (mean of 8: {measured.get('psnr_mean_of_samples', 0):.2f}),"
            f" rFID@{args.num} {measured['rfid']:.1f}, settled at {run.get('settling_step')}"
        )
    say(f"wrote {args.results / 'rate_targeting.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train")
    trainer.add_argument("--targets", default="0.04,0.1,0.19", help="bits/pixel, comma-separated")
    trainer.add_argument("--fixed", default="", help="fixed loss factors to train for comparison")
    trainer.add_argument("--steps", type=int, default=10_000)
    trainer.add_argument(
        "--eval-images", type=int, default=1000, help="test images of each training evaluation"
    )
    trainer.add_argument("--preset", default="fashion-mnist", help="autoencoder preset")
    trainer.add_argument("--jobs", type=int, default=1)
    reporter = commands.add_parser("report")
    reporter.add_argument("--num", type=int, default=1000)
    reporter.add_argument("--compare", type=Path, action="append", default=[])
    reporter.add_argument("--results", type=Path, default=CHECKOUT / "docs" / "results")
    reporter.add_argument("--inception", type=Path, default=None, help="TorchScript file")
    for sub in (trainer, reporter):
        sub.add_argument("--work-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return train(args) if args.command == "train" else report(args)


if __name__ == "__main__":
    sys.exit(main())
