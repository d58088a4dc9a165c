"""The planning side of `paper_tables.py`: the `Orchestrator` that turns the chosen sections into
dependent jobs (trainings, evaluations, sweeps through the library's `ul` commands), with the
plan it records in plan.json (budgets and the equivalent command lines)."""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from _tables_jobs import Job, OutputRouter, say
from _tables_plan import (
    ABLATION_ROWS,
    KL_VAE,
    PIXEL,
    QUIET,
    SCHEMES,
    UL,
    Presets,
    Run,
    base_cost,
    command_line,
    end_to_end_cost,
    equal_flop_budgets,
    read_json,
    steps_for_flops,
    two_stage_flops,
)
from unified_latents.commands import Interrupted
from unified_latents.commands.evaluate import evaluate, evaluation_current, read_evaluation
from unified_latents.commands.sweep import SweepOptions, sweep
from unified_latents.runs.directory import newest_step
from unified_latents.runs.latents import stale_latents
from unified_latents.sweep import training_finished


def priority(job: Job) -> int:
    """UL's chain first (it gates the end-to-end runs), then the sweep, then the rest."""
    if job.name.endswith(("/ul", "end-to-end/shifted-decoder", "end-to-end/noise-augmented")):
        return 0
    return 1 if job.name == "sweep table2" else 2


def stage1_budget(minutes: float | None, steps: int | None) -> str:
    """The stage-1 budget in words (every stage-1 run, sweep points included, gets it)."""
    parts = [f"{minutes:g} min of training wall-clock"] if minutes else []
    parts += [f"{steps} optimizer steps"] if steps else []
    if not parts:
        return "the preset's max_steps per run."
    budget = " or ".join(parts) + (", whichever comes first," if len(parts) == 2 else "")
    note = " (steps then differ with per-step cost and machine load: see each row)"
    return f"{budget} per run{note if minutes else ''}."


class Orchestrator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.work_dir
        self.presets = Presets(args.tiny)
        self.output = OutputRouter()  # each step's printed output goes to its own log
        self.plan: dict[str, Any] = read_json(self.work / "plan.json") or {}
        self.plan.setdefault("commands", {})
        self.plan["command"] = shlex.join(["python", "benchmarks/paper_tables.py", *sys.argv[1:]])
        self.plan["settings"] = {k: str(v) for k, v in vars(args).items()}
        self.plan["stage1_budget"] = stage1_budget(args.ae_minutes, args.ae_steps)

    # ------------------------------------------------------------ library calls
    def execute(self, call: Callable[[], object], args: list[str], log_name: str) -> None:
        """Run `call` (the library's equivalent of `ul ARGS`) in this process, its output in
        the step's log; a failure raises with the end of that log."""
        log = self.work / "logs" / f"{log_name.replace('/', '_').replace(' ', '_')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"  $ {command_line(args)}   (log: {log})")
        with log.open("a") as stream, self.output.to(stream):
            stream.write(f"\n$ {command_line(args)}\n")
            stream.flush()
            try:
                call()
            except Interrupted as stop:  # Ctrl-C/SIGTERM: the checkpoint is written; stop all
                raise KeyboardInterrupt from stop
            except Exception:
                traceback.print_exc(file=stream)
                stream.flush()
                tail = log.read_text().splitlines()[-15:]
                raise RuntimeError(f"log {log}:\n" + "\n".join(tail)) from None

    def record(self, key: str, part: str, args: list[str]) -> None:
        self.plan["commands"].setdefault(key, {})[part] = command_line(args)

    # ------------------------------------------------------------ actions
    def train(self, run: Run) -> str:
        run_dir = run.directory(self.work)
        args = run.train_args(self.work)
        self.record(run.key, "train", args)
        problem = run.autoencoder and stale_latents(self.work / run.autoencoder)
        if problem:
            raise RuntimeError(problem)
        if training_finished(run_dir, run.train_config()):
            return f"skipped: finished at step {newest_step(run_dir)}"
        self.execute(partial(run.train_in_process, self.work), args, f"train {run.key}")
        if not training_finished(run_dir, run.train_config()):
            raise RuntimeError(f"stopped at step {newest_step(run_dir)} before its budget")
        return f"trained to step {newest_step(run_dir)}"

    def evaluate(self, key: str) -> str:
        args = ["evaluate", "--run", str(self.work / key), "--num", str(self.args.fid_num)]
        args += ["--inception", str(self.args.inception)] if self.args.inception else []
        self.record(key, "evaluate", args)
        if evaluation_current(self.work / key, self.args.fid_num):
            return "skipped: eval.json is current"
        run = partial(
            evaluate,
            self.work / key,
            num=self.args.fid_num,
            inception=self.args.inception,
            command=command_line(args),
        )
        self.execute(run, args, f"evaluate {key}")
        return "evaluated"

    def sweep_options(self) -> SweepOptions:
        """`ul sweep` over the Table 2 grid, every point with the stage-1 budget."""
        args = self.args
        options = SweepOptions(
            preset=self.presets.autoencoder(UL),
            grid=[f"loss_factor={args.loss_factors}"]
            + ([f"bias={args.biases}"] if args.biases else []),
            assignments=[QUIET, *self.stage1_steps(), *args.ae_set],
            budget_minutes=args.ae_minutes or None,
            sweep_dir=self.work / "table2" / "sweep",
            evaluate_num=args.fid_num,
            inception=args.inception,
        )
        if not args.table2_base:
            return options
        budget = self.plan["base_budget"]["models"][UL]["steps"]
        base_set = [QUIET, *args.base_set, f"train.max_steps={budget}"]
        return replace(
            options,
            with_base=True,
            base_preset=self.presets.base,
            base_assignments=base_set,
            base_budget_minutes=0.0,
        )

    def sweep(self) -> str:
        options = self.sweep_options()
        args = sweep_args(options)
        options = replace(options, command=command_line(args))
        self.record("table2/sweep", "train", args)
        self.execute(partial(sweep, options), args, "sweep table2")
        points = (read_json(self.work / "table2" / "sweep" / "sweep.json") or {}).get("points", [])
        wanted = len(self.args.loss_factors.split(",")) * max(1, len(self.args.biases.split(",")))
        if len(points) < wanted:
            raise RuntimeError(f"the sweep stopped after {len(points)} of {wanted} points")
        return f"{len(points)} points trained and evaluated"

    def train_end_to_end(self, scheme: str) -> str:
        """Steps so that this run's training FLOPs equal the evaluated two-stage total."""
        budget = two_stage_flops(read_evaluation(self.work / "base" / UL) or {})
        assignments = [f"scheme={scheme}", QUIET, *self.args.e2e_set]
        batch, per_image = end_to_end_cost(self.presets.end_to_end, assignments)
        steps = steps_for_flops(budget, batch, per_image)
        section = self.plan.setdefault("end_to_end_budget", {})
        section["flops"] = budget
        section["how"] = (
            "the two-stage total from base/ul's eval.json (stage 1 + base) ÷ (batch × "
            "training FLOPs per image of the single-stage loss, counted on the model)"
        )
        section.setdefault("models", {})[scheme] = {
            "steps": steps,
            "batch_size": batch,
            "training_flops_per_image": per_image,
            "training_flops": steps * batch * per_image,
        }
        assignments.append(f"train.max_steps={steps}")
        key = f"end-to-end/{scheme}"
        return self.train(Run(key, "end-to-end", self.presets.end_to_end, tuple(assignments)))

    # ------------------------------------------------------------ the plan
    def stage1_steps(self) -> list[str]:
        return [f"train.max_steps={self.args.ae_steps}"] if self.args.ae_steps else []

    def stage1_run(self, row: str) -> Run:
        budget = (
            [f"train.time_budget_minutes={self.args.ae_minutes}"] if self.args.ae_minutes else []
        )
        assignments = (*budget, *self.stage1_steps(), QUIET, *self.args.ae_set)
        return Run(f"stage1/{row}", "autoencoder", self.presets.autoencoder(row), assignments)

    def base_run(self, row: str, steps: int) -> Run:
        preset = self.presets.pixel if row == PIXEL else self.presets.base
        assignments = (*self.args.base_set, QUIET, "train.time_budget_minutes=0")
        assignments += (f"train.max_steps={steps}",)
        autoencoder = None if row == PIXEL else f"stage1/{row}"
        return Run(f"base/{row}", "base", preset, assignments, autoencoder)

    def plan_jobs(self, sections: list[str]) -> dict[str, Job]:
        """Every step of the chosen sections. Insertion order is priority: the longest chain
        (UL stage 1 → its base model → evaluation → end-to-end runs) first, evaluations last."""
        base_rows = [UL, KL_VAE, PIXEL] if "flops" in sections else []
        base_rows += [UL] if "end-to-end" in sections else []
        base_rows += (
            list(ABLATION_ROWS) if "ablations" in sections and self.args.ablation_base else []
        )
        base_rows = list(dict.fromkeys(sorted(base_rows, key=lambda row: row != UL)))
        sweep_bases = "table2" in sections and self.args.table2_base  # UL's budget per point
        if base_rows or sweep_bases:
            self.plan["base_budget"] = self.base_budgets(base_rows or [UL])
        evaluated = list(ABLATION_ROWS) if "ablations" in sections else []
        evaluated += [UL] if "end-to-end" in sections else []
        stage1_rows = [row for row in base_rows if row != PIXEL] + evaluated
        stage1_rows = list(dict.fromkeys(sorted(stage1_rows, key=lambda row: row != UL)))
        trains: list[Job] = []
        evaluations: list[Job] = []
        for row in stage1_rows:
            run = self.stage1_run(row)
            trains.append(self.training(run, ()))
            if row in evaluated:
                evaluations.append(self.evaluation(run.key))
        for row in base_rows:
            base = self.base_run(row, self.plan["base_budget"]["models"][row]["steps"])
            deps = () if row == PIXEL else (f"train stage1/{row}",)
            trains.append(self.training(base, deps))
            evaluation = self.evaluation(base.key)
            (trains if row == UL else evaluations).append(evaluation)  # UL's gates end-to-end
        for scheme in SCHEMES if "end-to-end" in sections else ():
            key = f"end-to-end/{scheme}"
            action = partial(self.train_end_to_end, scheme)
            trains.append(Job(f"train {key}", ("evaluate base/ul",), action))
            evaluations.append(self.evaluation(key))
        if "table2" in sections:
            trains.insert(0, Job("sweep table2", (), self.sweep))
        return {job.name: job for job in sorted(trains, key=priority) + evaluations}

    def training(self, run: Run, deps: tuple[str, ...]) -> Job:
        return Job(f"train {run.key}", deps, partial(self.train, run))

    def evaluation(self, key: str) -> Job:
        return Job(f"evaluate {key}", (f"train {key}",), partial(self.evaluate, key))

    def base_budgets(self, rows: list[str]) -> dict[str, Any]:
        costs = {}
        for row in rows:
            run = self.base_run(row, 1)
            stage1 = None if row == PIXEL else self.stage1_run(row)
            space = None if stage1 is None else (stage1.preset, list(stage1.assignments))
            costs[row] = base_cost(run.preset, list(run.assignments), space)
        flops, budgets = equal_flop_budgets(
            costs, flops=self.args.base_flops, steps=self.args.base_steps, reference=UL
        )
        how = (
            f"--base-steps {self.args.base_steps} for the UL base model, converted"
            if self.args.base_steps
            else f"--base-flops {self.args.base_flops:g}, converted"
        )
        how += " to steps per model as floor(budget ÷ (batch × training FLOPs per sample))"
        models = {name: budget.record() for name, budget in budgets.items()}
        return {"flops": flops, "how": how, "models": models}


def sweep_args(options: SweepOptions) -> list[str]:
    """The `ul sweep` command line of `options`, for plan.json, the log and sweep.json."""
    args = ["sweep", "--preset", options.preset, "--sweep-dir", str(options.sweep_dir)]
    args += ["--evaluate-num", str(options.evaluate_num)]
    for axis in options.grid:
        args += ["--grid", axis]
    if options.budget_minutes:
        args += ["--budget-minutes", str(options.budget_minutes)]
    for assignment in options.assignments:
        args += ["--set", assignment]
    if options.with_base:
        args += ["--with-base", "--base-preset", str(options.base_preset)]
        args += ["--base-budget-minutes", "0"]
        for assignment in options.base_assignments:
            args += ["--base-set", assignment]
    args += ["--inception", str(options.inception)] if options.inception else []
    return args
