"""A small dependency-aware job runner with progress lines, for `paper_tables.py`, and the routing
of each job's printed output into its own log while jobs run in threads of one process."""

from __future__ import annotations

import contextlib
import io
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

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


def _outcome(action: Callable[[], str]) -> str | Exception:
    try:
        return action()
    except Exception as error:  # a failed job; KeyboardInterrupt stops the whole run
        return error


def run_jobs(jobs: dict[str, Job], workers: int) -> dict[str, str]:
    """Run `jobs` respecting their dependencies, up to `workers` at once; a job whose dependency
    failed is not started. Returns each job's final status.

    With one worker the jobs run in the calling thread, so a training stopped by Ctrl-C or
    SIGTERM saves its checkpoint first (as `ul` does); with more, in daemon threads, which a
    Ctrl-C leaves at their last checkpoint."""
    status: dict[str, str] = {}
    pending = dict(jobs)
    started: dict[str, float] = {}  # the running jobs
    finished: queue.Queue[tuple[str, str | Exception]] = queue.Queue()
    count, total = 0, len(jobs)
    while pending or started:
        for name, job in list(pending.items()):
            broken = [d for d in job.deps if d not in jobs or status.get(d, "ok") != "ok"]
            if broken:
                status[name] = f"not run: {', '.join(broken)} did not finish"
                say(f"✗ {name}: {status[name]}")
                del pending[name]
            elif all(status.get(d) == "ok" for d in job.deps) and len(started) < workers:
                count += 1
                say(f"▶ ({count}/{total}) {name}")
                started[name] = time.monotonic()
                del pending[name]
                if workers == 1:
                    finished.put((name, _outcome(job.action)))
                else:
                    threading.Thread(
                        target=lambda n=name, j=job: finished.put((n, _outcome(j.action))),
                        name=name,
                        daemon=True,
                    ).start()
        if not started:
            if pending:  # only possible with a dependency cycle
                status.update({name: "not run: dependency cycle" for name in pending})
            break
        name, outcome = finished.get()
        took = time.monotonic() - started.pop(name)
        if isinstance(outcome, Exception):
            status[name] = f"failed: {outcome}"
            say(f"✗ {name} FAILED after {took / 60:.1f} min: {outcome}")
        else:
            status[name] = "ok"
            say(f"✓ {name}: {outcome} ({took / 60:.1f} min)")
    return status


class _Routed(io.TextIOBase):
    """A stand-in for sys.stdout / sys.stderr: a thread's writes go to the stream it chose with
    `OutputRouter.to`, everything else to the original."""

    def __init__(self, original: TextIO, local: threading.local) -> None:
        self.original, self.local = original, local

    def target(self) -> TextIO:
        stream: TextIO | None = getattr(self.local, "stream", None)
        return stream or self.original

    def write(self, text: str) -> int:
        return self.target().write(text)

    def flush(self) -> None:
        self.target().flush()

    def isatty(self) -> bool:
        return self.target().isatty()

    def fileno(self) -> int:
        return self.target().fileno()


class OutputRouter:
    """While entered, what the library prints (progress, warnings, results) from a thread inside
    `to(log)` goes to that log, so jobs running side by side keep separate logs."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.saved: tuple[TextIO, TextIO] | None = None

    def __enter__(self) -> OutputRouter:
        self.saved = sys.stdout, sys.stderr
        sys.stdout = _Routed(sys.stdout, self.local)  # type: ignore[assignment]
        sys.stderr = _Routed(sys.stderr, self.local)  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.saved is not None
        sys.stdout, sys.stderr = self.saved

    @contextlib.contextmanager
    def to(self, stream: TextIO) -> Iterator[None]:
        self.local.stream = stream
        try:
            yield
        finally:
            self.local.stream = None
