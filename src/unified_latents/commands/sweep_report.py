"""The readable side of `ul sweep`: the sweep.md table and the plots.

Plots (one line per combination of the other grid axes, e.g. one per decoder bias):
- bits/pixel vs the loss factor (or the first grid axis when c_lf is not swept),
- PSNR vs bits/pixel: the rate–distortion curve,
- gFID@N vs bits/pixel (with --with-base and --evaluate-num > 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from unified_latents.evaluation.report import format_value
from unified_latents.sweep import GridAxis, short_names
from unified_latents.visualize import pyplot, save_figure

LOSS_FACTOR_KEY = "model.loss_factor"
Row = Mapping[str, Any]


def _as_float(value: Any) -> float | None:
    """Numeric grid values as floats; others (names, flags) cannot be an x axis."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _metric(prefix: str) -> Callable[[Row], float | None]:
    """The first metric of a row whose name starts with `prefix` (e.g. "rFID@" whatever N)."""

    def value(row: Row) -> float | None:
        metrics = row.get("metrics", {})
        for name in sorted(metrics):
            if name.startswith(prefix) and not name.endswith("_std"):
                found = metrics[name]
                return None if found is None else float(found)
        return None

    return value


def _base_metric(prefix: str) -> Callable[[Row], float | None]:
    return lambda row: _metric(prefix)(row["base"]) if "base" in row else None


def _metric_name(rows: Sequence[Row], prefix: str, base: bool = False) -> str | None:
    for row in rows:
        source = row.get("base", {}) if base else row
        for name in sorted(source.get("metrics", {})):
            if name.startswith(prefix) and not name.endswith("_std"):
                return str(name)
    return None


def _columns(rows: Sequence[Row]) -> list[tuple[str, Callable[[Row], float | None]]]:
    columns = [
        ("step", lambda row: row.get("step")),
        ("bits/pixel", _metric("bits_per_pixel")),
        ("PSNR dB", _metric("psnr_db")),
        ("SSIM", _metric("ssim")),
    ]
    for prefix in ("rFID@", "rKID@"):
        name = _metric_name(rows, prefix)
        if name:
            columns.append((name, _metric(prefix)))
    if any("base" in row for row in rows):
        columns += [
            ("base step", lambda row: row["base"]["step"] if "base" in row else None),
            ("base ELBO bits/pixel", _base_metric("base_elbo_bits_per_pixel")),
        ]
        for prefix in ("gFID@", "gKID@", "FD_cls@", "classifier_accuracy"):
            name = _metric_name(rows, prefix, base=True)
            if name:
                columns.append(
                    (f"{name} (base)" if "@" not in name else name, _base_metric(prefix))
                )
    return columns


def write_table(
    path: Path,
    record: Mapping[str, Any],
    axes: Sequence[GridAxis],
    rows: Sequence[Row],
    plots: Sequence[Path],
) -> Path:
    names = short_names(axes)
    columns = _columns(rows)
    header = ["point", *(names[axis.key] for axis in axes), *(title for title, _ in columns)]
    lines = [
        f"# Sweep over {', '.join(axis.key for axis in axes)} (preset {record['preset']})",
        "",
        f"Each point trained with `{' '.join(record['set']) or 'the preset'}`"
        + (f", budget {record['budget_minutes']} min" if record["budget_minutes"] else "")
        + "; bits/pixel is the prior's bound (÷H·W), PSNR/SSIM of decoder reconstructions.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [f"`{row['name']}`", *(str(row["values"][axis.key]) for axis in axes)]
        cells += [format_value(getter(row)) for _, getter in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"![{plot.stem}](plots/{plot.name})" for plot in plots]]
    lines += ["", "```", record["command"] or "(called from Python)", "```", ""]
    path.write_text("\n".join(lines))
    return path


def _groups(
    axes: Sequence[GridAxis], x_key: str | None, rows: Sequence[Row]
) -> dict[str, list[Row]]:
    """Rows grouped by the values of every axis except `x_key`; labels like "decoder_bias=-2"."""
    names = short_names(axes)
    others = [axis.key for axis in axes if axis.key != x_key]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        label = ", ".join(f"{names[key]}={row['values'][key]}" for key in others) or "all points"
        groups.setdefault(label, []).append(row)
    return groups


def _plot(
    path: Path,
    groups: Mapping[str, Sequence[Row]],
    x: Callable[[Row], float | None],
    y: Callable[[Row], float | None],
    labels: tuple[str, str, str],
) -> Path | None:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    plotted = False
    for label, members in groups.items():
        points = sorted(
            (float(px), float(py))
            for px, py in ((x(row), y(row)) for row in members)
            if px is not None and py is not None and math.isfinite(px) and math.isfinite(py)
        )
        if points:
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, ys, marker="o", label=label)
            plotted = True
    if not plotted:
        plt.close(figure)
        return None
    xlabel, ylabel, title = labels
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def write_plots(directory: Path, axes: Sequence[GridAxis], rows: Sequence[Row]) -> list[Path]:
    keys = [axis.key for axis in axes]
    x_key = LOSS_FACTOR_KEY if LOSS_FACTOR_KEY in keys else keys[0]
    x_name = short_names(axes)[x_key]
    bits = _metric("bits_per_pixel")
    by_others = _groups(axes, x_key, rows)
    plots = [
        _plot(
            directory / f"bits_per_pixel_vs_{x_name}.png",
            by_others,
            lambda row: _as_float(row["values"][x_key]),
            bits,
            (x_name, "bits/pixel (prior bound)", f"rate vs {x_name}"),
        ),
        _plot(
            directory / "psnr_vs_bits_per_pixel.png",
            by_others,
            bits,
            _metric("psnr_db"),
            ("bits/pixel (prior bound)", "PSNR (dB)", "rate–distortion"),
        ),
    ]
    gfid = _metric_name(rows, "gFID@", base=True)
    if gfid:
        plots.append(
            _plot(
                directory / "gfid_vs_bits_per_pixel.png",
                by_others,
                bits,
                _base_metric("gFID@"),
                ("bits/pixel (prior bound)", gfid, "generation vs rate"),
            )
        )
    return [plot for plot in plots if plot is not None]
