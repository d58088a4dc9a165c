"""Rerun small-scale versions of the paper's experiments on Fashion-MNIST and write docs/results.md.

    nice -n 15 .venv/bin/python benchmarks/paper_tables.py --jobs 2   # 86 + 24 min (results.md §6)
    nice -n 15 .venv/bin/python benchmarks/paper_tables.py --tiny --jobs 2 \\
        --work-dir /tmp/pt --results /tmp/pt/results.md                          # smoke run

Tables (UL-SPEC §9–10, issues 4 and 6), each by the library's `ul` commands run in this process
(`commands/train.py`, `commands/evaluate.py`, `commands/sweep.py`; plan.json records the
equivalent `ul` command lines):
  table2      `ul sweep` over c_lf (and optionally the decoder bias): bits/pixel, PSNR, SSIM, rFID@N
  ablations   UL vs each ablation preset and kl-vae at one stage-1 budget (+ base/gFID with
              --ablation-base)
  flops       base models on UL latents, kl-vae latents and pixels at EQUAL base training FLOPs:
              gFID@N, FD_cls@N, classifier accuracy
  end-to-end  two-stage vs `shifted-decoder` vs `noise-augmented` at equal total training FLOPs
Runs live in --work-dir (plan.json holds budgets and commands; logs/ one log per step); the jobs
are planned by `_tables_orchestrator.py`.
Re-running resumes: finished trainings and current evaluations are skipped, the rest continue.
Ctrl-C with --jobs 1 stops the running training after its checkpoint, as `ul` does; with more jobs
(threads of this process) the running steps stop at once and resume from their last checkpoint.
The runs start from the `fashion-mnist` presets as they are. docs/results.md §6 was measured at
commit 9294aa3, before the preset moved to c_lf = 3.0 and exact-GELU MLPs; today's runs differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

import torch

from _tables_jobs import minutes_elapsed, run_jobs, say
from _tables_orchestrator import Orchestrator
from _tables_plan import SECTIONS
from _tables_report import render_results, replace_block
from unified_latents.training.cpu_allocator import keep_freed_memory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/paper-tables"))
    parser.add_argument("--results", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--only", default=",".join(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--tiny", action="store_true", help="-tiny presets, seconds per run")
    parser.add_argument("--ae-minutes", type=float, help="stage-1 wall-clock budget per run")
    parser.add_argument("--ae-steps", type=int, help="stage-1 step budget per run (default 600)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--base-flops", type=float, help="base-model training FLOPs per model")
    budget.add_argument("--base-steps", type=int, help="UL base steps; others FLOP-matched")
    parser.add_argument("--fid-num", type=int, help="N of FID@N (default 500; tiny 16)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings/evaluations at once")
    parser.add_argument("--loss-factors", default="1.2,1.5,2.0", help="c_lf grid of Table 2")
    parser.add_argument("--biases", default="", help="decoder-bias grid of Table 2 (optional)")
    parser.add_argument("--table2-base", action="store_true", help="gFID per sweep point")
    parser.add_argument("--ablation-base", action="store_true", help="gFID per ablation row")
    parser.add_argument("--ae-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--base-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--e2e-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--inception", type=Path, help="FID Inception TorchScript file")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args(argv)
    if args.ae_minutes is None and args.ae_steps is None and not args.tiny:
        args.ae_steps = 600  # steps, not minutes: load on the machine must not change a row
    if args.base_flops is None and args.base_steps is None:
        args.base_steps, args.base_flops = (20, None) if args.tiny else (None, 2e13)
    args.fid_num = args.fid_num or (16 if args.tiny else 500)
    args.jobs = max(1, args.jobs)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = [section for section in SECTIONS if section in args.only.split(",")]
    orchestrator = Orchestrator(args)
    say(f"planning {', '.join(sections)} in {args.work_dir} (FID@{args.fid_num})")
    jobs = orchestrator.plan_jobs(sections)
    plan_path = args.work_dir / "plan.json"
    args.work_dir.mkdir(parents=True, exist_ok=True)
    say(f"{len(jobs)} steps, {args.jobs} at a time; budgets and commands in {plan_path}")
    if args.dry_run:
        for job in jobs.values():
            print(f"  {job.name}" + (f"  (after {', '.join(job.deps)})" if job.deps else ""))
        budgets = {key: orchestrator.plan.get(key) for key in ("stage1_budget", "base_budget")}
        print(json.dumps(budgets, indent=2))
        return 0
    plan_path.write_text(json.dumps(orchestrator.plan, indent=2) + "\n")
    keep_freed_memory()  # as `ul` sets it for every command (training/cpu_allocator.py)
    if "OMP_NUM_THREADS" not in os.environ:  # the cores shared among the jobs at once
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.jobs))
    try:
        with orchestrator.output:
            status = run_jobs(jobs, args.jobs)
    except KeyboardInterrupt:
        say("interrupted: re-run the same command to resume")
        return 130
    finally:
        plan_path.write_text(json.dumps(orchestrator.plan, indent=2) + "\n")
    orchestrator.plan["status"] = status
    orchestrator.plan["elapsed_minutes"] = minutes_elapsed()
    plan_path.write_text(json.dumps(orchestrator.plan, indent=2) + "\n")
    try:
        text = render_results(args, orchestrator.plan, sections)
    except Exception:
        traceback.print_exc()
        return 1
    existing = args.results.read_text() if args.results.exists() else None
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(replace_block(existing, text))
    failed = [name for name, state in status.items() if state != "ok"]
    say(f"results: {args.results} (figures and raw JSON in {args.results.with_suffix('')}/)")
    for name in failed:
        say(f"not finished: {name}: {status[name].splitlines()[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
