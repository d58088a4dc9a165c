"""A small dependency-aware job runner with progress lines, for `paper_tables.py`."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

STARTED = time.monotonic()


def minutes_elapsed() -> float:
    return (time.monotonic() - STARTED) / 60


def say(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[paper-tables +{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


@dataclass
class Job:
    name: str
    deps: tuple[str, ...]
    action: Callable[[], str]  # returns what happened ("trained", "skipped: ...")


def run_jobs(jobs: dict[str, Job], workers: int) -> dict[str, str]:
    """Run `jobs` respecting their dependencies, up to `workers` at once; a job whose dependency
    failed is not started. Returns each job's final status."""
    status: dict[str, str] = {}
    pending = dict(jobs)
    running: dict[Future[str], str] = {}
    started: dict[str, float] = {}
    count, total = 0, len(jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for name, job in list(pending.items()):
                broken = [d for d in job.deps if d not in jobs or status.get(d, "ok") != "ok"]
                if broken:
                    status[name] = f"not run: {', '.join(broken)} did not finish"
                    say(f"✗ {name}: {status[name]}")
                    del pending[name]
                elif all(status.get(d) == "ok" for d in job.deps) and len(running) < workers:
                    count += 1
                    say(f"▶ ({count}/{total}) {name}")
                    started[name] = time.monotonic()
                    running[pool.submit(job.action)] = name
                    del pending[name]
            if not running:
                if pending:  # only possible with a dependency cycle
                    status.update({name: "not run: dependency cycle" for name in pending})
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                took = time.monotonic() - started[name]
                try:
                    outcome = future.result()
                    status[name] = "ok"
                    say(f"✓ {name}: {outcome} ({took / 60:.1f} min)")
                except Exception as error:
                    status[name] = f"failed: {error}"
                    say(f"✗ {name} FAILED after {took / 60:.1f} min: {error}")
    return status
