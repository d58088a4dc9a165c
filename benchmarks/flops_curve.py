"""Issue 14: generation quality per training FLOP on UL latents vs KL-VAE latents vs pixels.

    python benchmarks/flops_curve.py train --work-dir /work/exp14 --jobs 2   # stage 1 + base models
    python benchmarks/flops_curve.py evaluate --work-dir /work/exp14         # selections, curve
    python benchmarks/flops_curve.py report --work-dir /work/exp14           # JSON, plots, table

Five arms (`ARMS`): UL at two loss factors, the KL-VAE at two KL weights (same latent shape) and
pixel-space diffusion. Every latent arm trains stage 1 for `--stage1-steps`, then the same
class-conditional base model (architecture, optimiser, lr, EMA, batch, data order and seed) for
`--base-steps`, keeping the checkpoints at 1/8, 1/4, 1/2 and all of it, so one run per arm gives
a curve. Latents are normalised the same way for every latent arm (`latent_normalization=scalar`,
objectives/latent_diffusion.py); pixels diffuse images in [-1, 1] with the decoder's resolution
bias (runs/presets.py). Evaluation (`_curve_eval.py`) picks the decoder steps and input on rFID
and each arm's guidance on a separate validation seed, then measures gFID@N, KID, FD_cls and class
accuracy at every kept checkpoint, with a second sampling seed at the largest budget.

`--extend kl-1e-2=12000,...` continues chosen base models past `--base-steps` (the lr is constant
after warm-up, so this is the same as having planned the longer run) and measures them every half
budget beyond it, e.g. to give one arm points at another arm's total FLOPs; `--ul-from DIR` runs
the trainings with DIR's src/ (the worktree of the commit that trained the rest).

Everything resumes: finished trainings and evaluations (one JSON each under the work dir) are
skipped. Run it from a `git worktree` of a fixed commit; subprocesses import the package from the
checkout this file lives in, and `plan.json` records that commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from _tables_jobs import Job, run_jobs, say
from unified_latents.runs.directory import latest_training_state

CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Arm:
    name: str
    latent_space: str  # "ul", "kl-vae" or "pixels"
    stage1: tuple[str, ...] = ()  # preset, then --set assignments; empty for pixels
    base: tuple[str, ...] = ("fashion-mnist", "model.latent_normalization=scalar")
    stage1_steps: int = 0  # its stage 1's steps (0: the plan's --stage1-steps)


ARMS = {
    arm.name: arm
    for arm in (
        Arm("ul-lf1.5", "ul", ("fashion-mnist", "model.loss_factor=1.5")),
        Arm("ul-lf3.0", "ul", ("fashion-mnist", "model.loss_factor=3.0")),
        Arm("kl-1e-6", "kl-vae", ("kl-vae", "objective.kl_weight=1e-6")),
        Arm("kl-1e-2", "kl-vae", ("kl-vae", "objective.kl_weight=1e-2")),
        Arm("pixels", "pixels", (), ("pixel-fashion-mnist",)),
        # Ablations (not in the default set): the UL lf3.0 latents without normalisation; UL
        # lf1.5 with a stage 1 stopped at 3,000 steps (0.3× the FLOPs; the lr is constant after
        # warm-up, so these are the first 3,000 steps of ul-lf1.5's stage 1).
        Arm("ul-lf3.0-raw", "ul", ("fashion-mnist", "model.loss_factor=3.0"), ("fashion-mnist",)),
        Arm("ul-lf1.5-s3000", "ul", ("fashion-mnist", "model.loss_factor=1.5"), stage1_steps=3000),
    )
}
DEFAULT_ARMS = ("ul-lf1.5", "ul-lf3.0", "kl-1e-6", "kl-1e-2", "pixels")


@dataclass(frozen=True)
class Plan:
    work_dir: Path
    stage1_steps: int = 10000
    base_steps: int = 6000
    checkpoints: int = 8  # a kept checkpoint every base_steps / checkpoints steps
    decoder: str = ""  # "STEPS,INPUT" (e.g. "32,clean"): UL decoding given, not chosen on the grid
    # (arm, steps): base models continued past base_steps (constant lr after warm-up, so the
    # same as having planned the longer run), measured every base_steps / 2 beyond it
    extend: tuple[tuple[str, int], ...] = ()
    ul_from: str = str(CHECKOUT)  # the checkout whose src/ the trainings run

    def stage1_dir(self, arm: Arm) -> Path:
        # ul-lf3.0-raw shares ul-lf3.0's autoencoder: the same stage-1 run
        name = "ul-lf3.0" if arm.name == "ul-lf3.0-raw" else arm.name
        return self.work_dir / "runs" / "stage1" / name

    def base_dir(self, arm: Arm) -> Path:
        return self.work_dir / "runs" / "base" / arm.name

    def stage1_target(self, arm: Arm) -> int:
        """The steps `arm`'s stage 1 trains to: its own, else the plan's."""
        return arm.stage1_steps or self.stage1_steps

    def base_target(self, arm: Arm) -> int:
        """The steps `arm`'s base model trains to: base_steps, or more if it is extended."""
        return dict(self.extend).get(arm.name, self.base_steps)

    def budgets(self, arm: Arm | None = None) -> list[int]:
        """The base-model steps on the curve: 1/8, 1/4, 1/2 and all of the budget, then (for an
        extended arm) every half budget beyond it up to the arm's target."""
        steps = [self.base_steps // 8, self.base_steps // 4, self.base_steps // 2, self.base_steps]
        target = self.base_target(arm) if arm else self.base_steps
        return steps + list(range(self.base_steps * 3 // 2, target + 1, self.base_steps // 2))

    def stage1_args(self, arm: Arm) -> list[str]:
        preset, *assignments = arm.stage1
        steps = self.stage1_target(arm)
        sets = [*assignments, f"train.max_steps={steps}", "train.progress=false"]
        return [
            "train-autoencoder",
            "--preset",
            preset,
            "--run-dir",
            str(self.stage1_dir(arm)),
            *[item for assignment in sets for item in ("--set", assignment)],
        ]

    def base_args(self, arm: Arm) -> list[str]:
        preset, *assignments = arm.base
        every = self.base_steps // self.checkpoints
        sets = [
            *assignments,
            f"train.max_steps={self.base_target(arm)}",
            f"train.checkpoint_every={every}",
            f"train.eval_every={2 * every}",
            "train.keep_checkpoints=100",  # the curve's checkpoints must survive
            "train.progress=false",
        ]
        source = ["--autoencoder", str(self.stage1_dir(arm))] if arm.stage1 else []
        return [
            "train-base",
            *source,
            "--preset",
            preset,
            "--run-dir",
            str(self.base_dir(arm)),
            *[item for assignment in sets for item in ("--set", assignment)],
        ]


def newest_step(run_dir: Path) -> int:
    """The step of a run's newest complete checkpoint (0 before the first)."""
    newest = latest_training_state(run_dir)
    return int(newest[1]["step"]) if newest else 0


def ul_command(args: list[str], log: Path, checkout: Path = CHECKOUT) -> None:
    """Run `ul ARGS` from `checkout`'s src/, one thread, output appended to `log`."""
    python_command([sys.executable, "-m", "unified_latents", *args], log, checkout)


def python_command(command: list[str], log: Path, checkout: Path = CHECKOUT) -> None:
    """Run a Python `command` that imports the package from `checkout`'s src/ (one thread),
    output appended to `log`; a failure raises with the log's last lines."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "OMP_NUM_THREADS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stream:
        stream.write(f"\n$ {shlex.join(command)}\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-10:])
        raise RuntimeError(f"exit {done.returncode}; log {log}:\n{tail}")


def train_job(
    work_dir: Path, run_dir: Path, steps: int, args: list[str], name: str, checkout: Path = CHECKOUT
) -> str:
    """Train `run_dir` to `steps` with `ul ARGS` (from `checkout`, log WORK/logs/NAME.log),
    unless a checkpoint already reached them; a stopped run resumes."""
    if newest_step(run_dir) >= steps:
        return f"finished earlier (step {newest_step(run_dir)})"
    ul_command(args, work_dir / "logs" / f"{name.replace('/', '-')}.log", checkout)
    return f"trained to step {newest_step(run_dir)}"


def training_jobs(plan: Plan, arms: list[Arm]) -> dict[str, Job]:
    jobs: dict[str, Job] = {}
    for arm in arms:
        deps: tuple[str, ...] = ()
        if arm.stage1:
            stage1 = f"stage1/{plan.stage1_dir(arm).name}"
            if stage1 not in jobs:
                action = partial(
                    train_job,
                    plan.work_dir,
                    plan.stage1_dir(arm),
                    plan.stage1_target(arm),
                    plan.stage1_args(arm),
                    stage1,
                    Path(plan.ul_from),
                )
                jobs[stage1] = Job(stage1, (), action)
            deps = (stage1,)
        name = f"base/{arm.name}"
        base = (plan.base_dir(arm), plan.base_target(arm), plan.base_args(arm), name)
        action = partial(train_job, plan.work_dir, *base, Path(plan.ul_from))
        jobs[name] = Job(name, deps, action)
    return jobs


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(CHECKOUT), "status", "--porcelain", "src"], capture_output=True, text=True
    )
    return done.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def read_plan(work_dir: Path) -> dict[str, Any]:
    """WORK/plan.json as an earlier phase wrote it ({} before the first)."""
    path = work_dir / "plan.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_plan(plan: Plan, arms: list[Arm], command: str) -> None:
    path = plan.work_dir / "plan.json"
    record = read_plan(plan.work_dir)
    # every commit a phase ran at, oldest first (a resumed or extended run may use a newer one)
    commits = record.setdefault("commits", {})
    earlier = commits.get(command, [])
    earlier = [earlier] if isinstance(earlier, str) else earlier
    commits[command] = earlier + [c for c in [git_commit()] if c not in earlier]
    record["settings"] = {  # strings, as before; the extensions as [[arm, steps], ...]
        k: v if k == "extend" else str(v) for k, v in asdict(plan).items()
    }
    # arms and commands accumulate: a phase run for some arms keeps the others' records
    record["arms"] = record.get("arms", {}) | {arm.name: asdict(arm) for arm in arms}
    record["commands"] = record.get("commands", {}) | {
        **{
            f"stage1/{arm.name}": shlex.join(["ul", *plan.stage1_args(arm)])
            for arm in arms
            if arm.stage1
        },
        **{f"base/{arm.name}": shlex.join(["ul", *plan.base_args(arm)]) for arm in arms},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def parse_extend(
    parser: argparse.ArgumentParser, text: str, arms: list[Arm], base_steps: int
) -> tuple[tuple[str, int], ...]:
    """`--extend ARM=STEPS,...` as (arm, steps) pairs; a clear error for anything else."""
    pairs = []
    for part in filter(None, text.split(",")):
        name, _, steps = part.partition("=")
        if name not in {arm.name for arm in arms} or not steps.isdigit():
            parser.error(f"--extend {part!r}: expected ARM=STEPS with ARM one of the --arms")
        if int(steps) <= base_steps or int(steps) % (base_steps // 2):
            parser.error(f"--extend {part!r}: STEPS must be a multiple of {base_steps // 2} "
                         f"above --base-steps {base_steps}")  # fmt: skip
        pairs.append((name, int(steps)))
    return tuple(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=("train", "evaluate", "report"))
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS))
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    parser.add_argument("--stage1-steps", type=int, default=10000)
    parser.add_argument("--base-steps", type=int, default=6000)
    parser.add_argument("--num", type=int, default=2000, help="N of gFID@N / rFID@N")
    parser.add_argument(
        "--decoder",
        default="",
        help="UL decoder steps and input, e.g. 32,clean: skip the decoder grid (evaluate) and "
        "use these (a choice made on the grid by an earlier run of the same arms)",
    )
    parser.add_argument(
        "--extend",
        default="",
        help="continue base models past --base-steps, e.g. kl-1e-2=12000,kl-1e-6=12000: trained "
        "on and measured every base_steps/2 beyond it (the second seeds stay at --base-steps)",
    )
    parser.add_argument(
        "--ul-from",
        type=Path,
        default=None,
        help="the checkout whose src/ the trainings run (default: the work dir's earlier choice, "
        "else this one); e.g. the worktree of the commit that trained the rest, so a continued "
        "model keeps its training code",
    )
    parser.add_argument("--results", type=Path, default=CHECKOUT / "docs" / "results")
    args = parser.parse_args(argv)
    unknown = [name for name in args.arms.split(",") if name not in ARMS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {', '.join(ARMS)}")
    arms = [ARMS[name] for name in args.arms.split(",")]
    recorded = read_plan(args.work_dir)
    settings = recorded.get("settings", {})
    if not args.decoder:  # a work dir keeps the decoding it was started with
        args.decoder = settings.get("decoder", "")
    if args.decoder and not (
        args.decoder.count(",") == 1
        and args.decoder.split(",")[0].isdigit()
        and args.decoder.split(",")[1] in ("clean", "noisy")
    ):
        parser.error(f"--decoder {args.decoder!r}: expected STEPS,clean or STEPS,noisy")
    extend = parse_extend(parser, args.extend, arms, args.base_steps)
    if not args.extend:  # like the decoder, a work dir keeps its extensions
        extend = tuple((a, int(s)) for a, s in settings.get("extend", []))
    ul_from = str(args.ul_from.resolve()) if args.ul_from else settings.get("ul_from", "")
    plan = Plan(
        args.work_dir.resolve(),
        args.stage1_steps,
        args.base_steps,
        decoder=args.decoder,
        extend=extend,
        ul_from=ul_from or str(CHECKOUT),
    )

    record_plan(plan, arms, args.phase)
    if args.phase == "train":
        status = run_jobs(training_jobs(plan, arms), workers=args.jobs)
        return 0 if all(value == "ok" for value in status.values()) else 1
    from _curve_eval import evaluate_all
    from _curve_report import write_report

    if args.phase == "evaluate":
        evaluate_all(plan, arms, num=args.num)
        return 0
    write_report(plan, arms, num=args.num, results=args.results)
    written = [name for name in ("flops_curve.json", "flops_curve_details.json")
               if (args.results / name).is_file()]  # fmt: skip
    say(f"wrote {', '.join(written)} in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
