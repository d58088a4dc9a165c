"""Formatting helpers of `paper_tables.py`'s report: metric look-up, number formats, markdown
tables with numbered commands, labelled scatter plots, and where the runs are."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _tables_plan import SCALE_LABEL
from unified_latents.commands.evaluate import read_evaluation
from unified_latents.visualize import pyplot, save_figure

Record = Mapping[str, Any]


def metric(record: Record | None, prefix: str) -> float | None:
    """The first metric whose name starts with `prefix` ("gFID@" matches "gFID@500")."""
    metrics = (record or {}).get("metrics", {})
    for name in sorted(metrics):
        if name.startswith(prefix) and not name.endswith("_std") and metrics[name] is not None:
            return float(metrics[name])
    return None


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def fmt_flops(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def part_flops(record: Record | None, part: str) -> float | None:
    value = (record or {}).get("training", {}).get("parts", {}).get(part, {}).get("training_flops")
    return None if value is None else float(value)


def total_flops(record: Record | None) -> float | None:
    value = (record or {}).get("training", {}).get("total_flops")
    return None if value is None else float(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


@dataclass
class Section:
    """One table: its rows (cells), the commands they reference, raw values and plots."""

    title: str
    intro: list[str]
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def command_ref(self, *commands: str) -> str:
        """Numbers the commands behind one row; the cell cites them as `[c1, c2]`."""
        refs = []
        for command in commands:
            if command not in self.commands:
                self.commands.append(command)
            refs.append(f"c{self.commands.index(command) + 1}")
        return "[" + ", ".join(refs) + "]"

    def add(self, cells: list[str], commands: Sequence[str], raw: dict[str, Any]) -> None:
        self.rows.append([*cells, self.command_ref(*commands), SCALE_LABEL])
        self.raw.append(raw)

    def render(self, link_base: Path) -> list[str]:
        lines = [f"## {self.title}", "", *self.intro, ""]
        lines += markdown_table([*self.headers, "commands", "scale"], self.rows)
        lines += ["", "Commands:", ""]
        lines += [f"- c{index}: `{command}`" for index, command in enumerate(self.commands, 1)]
        if self.findings:
            lines += ["", "Read off the table (these runs only):", ""]
            lines += [f"- {finding}" for finding in self.findings]
        for plot in self.plots:
            lines += ["", f"![{plot.stem}]({link_base.name}/{plot.name})"]
        return [*lines, ""]


def scatter(
    path: Path, points: Sequence[tuple[str, float, float]], labels: tuple[str, ...]
) -> bool:
    """A labelled scatter plot (one point per run); False when no point is plottable."""
    points = [p for p in points if math.isfinite(p[1]) and math.isfinite(p[2])]
    if not points:
        return False
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, x, y in points:
        axis.scatter([x], [y])
        axis.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.set_title(f"{labels[2]}\n({SCALE_LABEL})", fontsize=9)
    axis.grid(alpha=0.3)
    save_figure(figure, path, dpi=120)
    return True


def bars(
    path: Path,
    rows: Sequence[tuple[str, float | None, float | None]],
    names: tuple[str, str],
    title: str,
) -> bool:
    """Side-by-side bar charts of two metrics (e.g. gFID and FD_cls) per row; rows without a
    value get no bar. False when nothing was measured."""
    panels = [
        (name, [(row[0], row[index + 1]) for row in rows if row[index + 1] is not None])
        for index, name in enumerate(names)
    ]
    panels = [(name, values) for name, values in panels if values]
    if not panels:
        return False
    plt = pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for axis, (name, values) in zip(axes[0], panels, strict=True):
        labels = [label for label, _ in values]
        heights = [float(value or 0.0) for _, value in values]
        axis.bar(range(len(values)), heights, color=[f"C{i}" for i in range(len(values))])
        axis.set_xticks(range(len(values)), labels, rotation=15, fontsize=8)
        for position, height in enumerate(heights):
            axis.annotate(f"{height:.3g}", (position, height), ha="center", va="bottom", fontsize=8)
        axis.set_ylabel(f"{name} (lower is better)")
    figure.suptitle(f"{title}\n({SCALE_LABEL})", fontsize=9)
    save_figure(figure, path, dpi=120)
    return True


@dataclass(frozen=True)
class Context:
    work_dir: Path
    num: int  # N of FID@N
    plan: Mapping[str, Any]
    figures: Path

    def eval(self, key: str) -> dict[str, Any] | None:
        return read_evaluation(self.work_dir / key)

    def commands(self, key: str) -> list[str]:
        entry = self.plan.get("commands", {}).get(key, {})
        return [entry[part] for part in ("train", "evaluate") if part in entry]

    def missing(self, key: str) -> str:
        status = self.plan.get("status", {})
        problems = [  # "train failed", "evaluate not run": the Status list has the reason
            f"{job.split()[0]} {state.split(':')[0]}"
            for job, state in status.items()
            if job.endswith(f" {key}") and state != "ok"
        ]
        return "; ".join(problems) or "not run yet"
