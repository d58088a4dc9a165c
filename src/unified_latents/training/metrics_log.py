"""Where training numbers go: `metrics.jsonl` (one JSON record per line) and TensorBoard events.

On resume, records past the resumed step are dropped so the log matches the restored state.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill -9
            continue
    return records


class MetricsLog:
    def __init__(self, run_dir: Path, resume_step: int, *, tensorboard: bool = True) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS_FILE
        kept = [record for record in read_metrics(run_dir) if record.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in kept))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when used

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step + 1)

    def log(self, step: int, split: str, values: dict[str, float]) -> None:
        clean = {key: float(value) for key, value in values.items()}
        record = {"step": step, "split": split, **clean}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in clean.items():
                if math.isfinite(value):
                    self.writer.add_scalar(f"{split}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class TrainWindow:
    """The optimizer steps since the last train record: sums of their logged terms, images and
    clipped steps, the last gradient norm and the wall time, for the next record's means."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps, self.images, self.clipped = 0, 0, 0
        self.grad_norm = math.nan
        self.start = time.perf_counter()

    def add(self, terms: Mapping[str, float], images: int, grad_norm: float, clipped: bool) -> None:
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1
        self.images += images
        self.grad_norm = grad_norm
        self.clipped += clipped

    def means(self) -> dict[str, float]:
        return {key: value / self.steps for key, value in self.sums.items()}

    def rates(self) -> dict[str, float]:
        """What the record adds to the task's summary of `means`."""
        seconds = time.perf_counter() - self.start
        return {
            "grad_norm": self.grad_norm,
            "clipped_fraction": self.clipped / self.steps,  # steps clipped by optim.grad_clip
            "images_per_second": self.images / max(seconds, 1e-9),
        }
