"""Issue 16: text-to-image on emoji captions, UL latents vs KL-VAE latents vs pixels at equal
base-model FLOPs.

    bash scripts/install-emoji.sh                      # once: the emoji caption dataset
    python benchmarks/text_to_image.py train --work-dir /work/t2i --jobs 2
    python benchmarks/text_to_image.py evaluate --work-dir /work/t2i [--num 888] [--jobs 2]
    python benchmarks/text_to_image.py report --work-dir /work/t2i

Three arms (`ARMS`, as `flops_curve.Arm`s, trained by the same job code as issue 14's curve):
the `emoji` UL autoencoder (RGB 32×32 → 8×8×4) and the `kl-vae-emoji` autoencoder (the same
encoder family and latent shape) for `--stage1-steps` each, then the same `emoji-text` base
model (token-level caption cross-attention, caption dropout 10 %, the same optimiser, batch, data
order and seed) on each one's frozen latents, normalised alike; and `pixel-emoji-text`: that base
model on the 32×32 images with 4×4 patches (64 tokens, as on the 8×8 latent). All base models
train `--base-steps`, so the two latent arms spend identical base FLOPs and pixels nearly so
(each row's `base_flops` is what its run counted: steps × batch × 3 × forward).

`train` also trains the alignment metric (`benchmarks/train_alignment.py`, 32×32) when it is
missing. `evaluate` runs `ul evaluate --run BASE --num N` on each base model's final checkpoint:
gFID@N of N samples, sample i drawn for the fixed caption of held-out image i, against the first
N images of the held-out-concepts split (all of them when N ≥ its size), and R@1/R@5 of the
samples' captions under the alignment metric, its chance and the real held-out images' R@1. The
preset's sampling settings serve every arm (guidance 2, 64 base steps; 32 decoder steps for UL).
`report` writes docs/results/text_to_image.json (a row per latent space with the issue's keys
`latent_space`, `gfid`, `n`, `r1`, `r1_chance`, `r1_real`, `base_flops`) and
text_to_image_details.json. Everything resumes; run it from a `git worktree` of a fixed commit
(the dataset is in the checkout's .cache/emoji: `ln -s /path/to/checkout/.cache WORKTREE/.cache`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from _tables_jobs import Job, run_jobs, say
from flops_curve import (
    CHECKOUT,
    Arm,
    Plan,
    newest_step,
    python_command,
    training_jobs,
    ul_command,
)
from unified_latents.metrics.alignment import default_metric_dir

RESULTS = CHECKOUT / "docs" / "results"
ROW_KEYS = ("latent_space", "gfid", "n", "r1", "r1_chance", "r1_real", "base_flops")
NORMALISED = "model.latent_normalization=scalar"
ARMS = (
    Arm("ul", "ul", ("emoji",), ("emoji-text", NORMALISED)),
    Arm("kl-vae", "kl-vae", ("kl-vae-emoji",), ("emoji-text", NORMALISED)),
    Arm("pixels", "pixels", (), ("pixel-emoji-text",)),
)
IMAGE_SIZE = 32


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "evaluate", "report"))
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--stage1-steps", type=int, default=10_000)
    parser.add_argument("--base-steps", type=int, default=6_000)
    parser.add_argument("--num", type=int, default=888, help="N of gFID@N (held-out images)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--arms", default=",".join(arm.name for arm in ARMS))
    parser.add_argument("--out", type=Path, default=RESULTS / "text_to_image.json")
    return parser.parse_args(argv)


def plan_of(args: argparse.Namespace) -> Plan:
    return Plan(args.work_dir, stage1_steps=args.stage1_steps, base_steps=args.base_steps)


def chosen_arms(args: argparse.Namespace) -> list[Arm]:
    by_name = {arm.name: arm for arm in ARMS}
    names = [name.strip() for name in args.arms.split(",") if name.strip()]
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise SystemExit(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    return [by_name[name] for name in names]


@contextlib.contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path`, waiting while another process (or thread) holds it;
    the kernel drops it when its holder dies, so a killed trainer never blocks the next one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def alignment_job(work_dir: Path, checkout: Path) -> str:
    """Train the 32×32 alignment metric unless it exists (about 15 CPU-minutes). Several `train`
    processes (arms split over processes) share one metric: the first trains it while the others
    wait on a lock beside it, then find it."""
    directory = default_metric_dir(IMAGE_SIZE)
    with waiting_lock(directory.with_name(directory.name + ".lock")):
        if (directory / "alignment.json").exists():
            return f"found {directory}"
        script = checkout / "benchmarks" / "train_alignment.py"
        results = str(work_dir / "alignment_metric.json")
        python_command([sys.executable, str(script), "--results", results],
                       work_dir / "logs" / "alignment.log", checkout)  # fmt: skip
    return f"trained {directory}"


def evaluation(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "eval" / "eval.json"
    return json.loads(path.read_text()) if path.exists() else None


def evaluate_job(plan: Plan, arm: Arm, num: int) -> str:
    """`ul evaluate` on the arm's base model at its final step (skipped if done at this N)."""
    run_dir = plan.base_dir(arm)
    step = newest_step(run_dir)
    if step < plan.base_steps:
        raise RuntimeError(f"{arm.name}: base model at step {step} of {plan.base_steps}")
    done = evaluation(run_dir)
    if done is not None and (done.get("step"), done.get("num")) == (step, num):
        return f"evaluated earlier (step {step}, N = {num})"
    log = plan.work_dir / "logs" / f"evaluate-{arm.name}.log"
    ul_command(["evaluate", "--run", str(run_dir), "--num", str(num)], log, Path(plan.ul_from))
    return f"evaluated step {step} at N = {num}"


def row(arm: Arm, record: dict[str, Any]) -> dict[str, Any]:
    """The issue's row (ROW_KEYS) of one arm's eval.json."""
    metrics, flops = record["metrics"], record.get("flops", {})
    return {
        "latent_space": arm.latent_space,
        "gfid": metrics.get(f"gFID@{record['num']}"),
        "n": record["num"],
        "r1": metrics.get("r1"),
        "r1_chance": metrics.get("r1_chance"),
        "r1_real": metrics.get("r1_real"),
        "base_flops": flops.get("training_total_base", flops.get("training_total")),
    }


def report(plan: Plan, arms: list[Arm], out: Path) -> list[dict[str, Any]]:
    rows, details = [], []
    for arm in arms:
        record = evaluation(plan.base_dir(arm))
        if record is None:
            say(f"{arm.name}: not evaluated yet (run `evaluate`)")
            continue
        rows.append(row(arm, record))
        details.append({"arm": arm.name, "run": str(plan.base_dir(arm)), **record})
    if len({r["n"] for r in rows}) > 1:
        raise SystemExit(f"rows measured at different N: {[r['n'] for r in rows]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    out.with_name(out.stem + "_details.json").write_text(json.dumps(details, indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan, arms = plan_of(args), chosen_arms(args)
    if args.command == "train":
        jobs = training_jobs(plan, arms)
        action = partial(alignment_job, plan.work_dir, Path(plan.ul_from))
        jobs["alignment"] = Job("alignment", (), action)
        status = run_jobs(jobs, args.jobs)
    elif args.command == "evaluate":
        jobs = {
            arm.name: Job(arm.name, (), partial(evaluate_job, plan, arm, args.num)) for arm in arms
        }
        status = run_jobs(jobs, args.jobs)
    else:
        for line in report(plan, arms, args.out):
            say(json.dumps(line))
        return 0
    return 0 if all(value == "ok" for value in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
