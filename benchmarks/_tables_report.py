"""The readable side of `paper_tables.py`: one section per table (markdown rows, plots, raw
values) and the results block; the generation tables (equal base FLOPs, end-to-end) are
`_tables_generation.py`'s.

Every number comes from a file a run wrote (`eval/eval.json`, the sweep's `sweep.json`) or from
the plan (FLOP budgets counted before training); a missing measurement is shown as "—" with the
reason, never filled in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from _tables_format import (
    Context,
    Record,
    Section,
    fmt,
    fmt_flops,
    markdown_table,
    metric,
    part_flops,
    scatter,
    total_flops,
)
from _tables_generation import end_to_end_section, flops_section
from _tables_plan import ABLATION_ROWS, KL_VAE, PIXEL, SCALE_LABEL, SCHEMES, read_json

LOSS_FACTOR = "model.loss_factor"
BEGIN, END = "<!-- paper-tables:begin -->", "<!-- paper-tables:end -->"


def table2_section(ctx: Context) -> Section:
    sweep = read_json(ctx.work_dir / "table2" / "sweep" / "sweep.json") or {}
    points = sweep.get("points", [])
    axes = list(sweep.get("grid", {}))
    with_base = bool(sweep.get("with_base"))
    headers = [*(a.rsplit(".", 1)[-1] for a in axes), "bits/pixel (prior bound)", "PSNR (dB)"]
    headers += ["SSIM", "rFID@N", "N", "stage-1 steps", "stage-1 training FLOPs"]
    headers += ["gFID@N (base)", "base steps"] if with_base else []
    section = Section("Table 2 analogue: loss factor c_lf → bits, reconstruction", [], headers)
    section.intro = [
        f"One `ul sweep` over {', '.join(axes) or '(not run yet)'}: every point is a stage-1 run "
        f"of the UL preset, budget {ctx.plan.get('stage1_budget', '—')} bits/pixel is the "
        "prior's bound on the latent's bits (÷ H·W); rFID@N compares N reconstructions with the "
        "same N held-out originals."
    ]
    sweep_command = ctx.commands("table2/sweep") or [str(sweep.get("command", ""))]
    for point in points:
        record = {"metrics": point.get("metrics", {})}
        base = point.get("base")
        cells = [str(point["values"].get(axis, "")) for axis in axes]
        cells += [fmt(metric(record, "bits_per_pixel")), fmt(metric(record, "psnr_db"))]
        cells += [
            fmt(metric(record, "ssim")),
            fmt(metric(record, "rFID@")),
            str(sweep.get("evaluate_num")),
        ]
        cells += [str(point.get("step")), fmt_flops(point.get("flops", {}).get("training_total"))]
        if with_base:
            cells += [fmt(metric(base, "gFID@")), str((base or {}).get("step", "—"))]
        section.add(cells, sweep_command, dict(point))
    if not points:
        section.findings.append(f"no sweep results yet ({ctx.missing('table2')})")
    plots = ctx.work_dir / "table2" / "sweep" / "plots"
    for plot in sorted(plots.glob("*.png")) if points else []:
        target = ctx.figures / f"table2_{plot.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, target)
        section.plots.append(target)
    section.findings += monotonic_findings(points, axes)
    return section


def strictly_rising(values: Sequence[float]) -> bool:
    return all(later > earlier for earlier, later in pairwise(values))


def monotonic_findings(points: Sequence[Record], axes: Sequence[str]) -> list[str]:
    """Does bits/pixel rise with c_lf, and PSNR with bits/pixel, at each setting of the other
    axes? (Issue 4's acceptance checks, stated for these runs only.)"""
    if LOSS_FACTOR not in axes:
        return []
    groups: dict[str, list[tuple[float, float, float | None]]] = {}
    for point in points:
        values = point["values"]
        others = ", ".join(f"{axis}={values[axis]}" for axis in axes if axis != LOSS_FACTOR)
        record = {"metrics": point.get("metrics", {})}
        bits = metric(record, "bits_per_pixel")
        if bits is not None:
            row = (float(values[LOSS_FACTOR]), bits, metric(record, "psnr_db"))
            groups.setdefault(others, []).append(row)
    findings = []
    for others, rows in groups.items():
        if len(rows) < 2:
            continue
        rows.sort()
        where = f" ({others})" if others else ""
        word = "increases" if strictly_rising([row[1] for row in rows]) else "does NOT increase"
        findings.append(f"bits/pixel {word} monotonically with c_lf{where}")
        curve = sorted((bits, psnr) for _, bits, psnr in rows if psnr is not None)
        if len(curve) == len(rows):
            rising = strictly_rising([psnr for _, psnr in curve])
            word = "increases" if rising else "does NOT increase"
            findings.append(f"PSNR {word} monotonically with bits/pixel{where}")
    return findings


def ablations_section(ctx: Context, with_base: bool) -> Section:
    headers = ["variant", "bits/pixel (prior)", "PSNR (dB)", "SSIM", "rFID@N", "N"]
    headers += ["stage-1 steps", "stage-1 training FLOPs"]
    if with_base:
        headers += ["base steps", "base training FLOPs", "gFID@N", "FD_cls@N"]
    section = Section("Tables 5/6 analogue: ablations and the KL autoencoder", [], headers)
    section.intro = [
        f"Each row is one stage-1 preset (docs/baselines.md) at the same stage-1 budget: "
        f"{ctx.plan.get('stage1_budget', '')} The KL autoencoder has no prior, so no bits bound "
        "(its KL to N(0, I), a different quantity, is given in brackets)."
    ]
    points = []
    for row in ABLATION_ROWS:
        key = f"stage1/{row}"
        record = ctx.eval(key)
        bits = metric(record, "bits_per_pixel")
        kl = metric(record, "kl_bits_per_pixel")
        bits_cell = fmt(bits) if bits is not None else (f"— (KL {fmt(kl)})" if kl else "—")
        cells = [row if record else f"{row} ({ctx.missing(key)})", bits_cell]
        cells += [fmt(metric(record, "psnr_db")), fmt(metric(record, "ssim"))]
        cells += [fmt(metric(record, "rFID@")), str((record or {}).get("num", "—"))]
        cells += [str((record or {}).get("step", "—")), fmt_flops(total_flops(record))]
        commands = ctx.commands(key)
        base = ctx.eval(f"base/{row}") if with_base else None
        if with_base:
            cells += [str((base or {}).get("step", "—")), fmt_flops(part_flops(base, "base"))]
            cells += [fmt(metric(base, "gFID@")), fmt(metric(base, "FD_cls@"))]
            commands += ctx.commands(f"base/{row}")
        section.add(cells, commands, {"variant": row, "stage1": record, "base": base})
        psnr = metric(record, "psnr_db")
        if bits is not None and psnr is not None:
            points.append((row, bits, psnr))
    path = ctx.figures / "ablations_rate_distortion.png"
    if scatter(
        path, points, ("bits/pixel (prior bound)", "PSNR (dB)", "ablations: rate–distortion")
    ):
        section.plots.append(path)
    return section


def replace_block(existing: str | None, block: str) -> str:
    """The results file with our block between the markers (other content kept)."""
    wrapped = f"{BEGIN}\n{block.rstrip()}\n{END}\n"
    if existing is None:
        return "# Measured results\n\n" + wrapped
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        return head + wrapped + rest.split(END, 1)[1].lstrip("\n")
    return existing.rstrip() + "\n\n" + wrapped


def evaluation_costs(ctx: Context, keys: Sequence[str]) -> list[str]:
    """How long each `ul evaluate` took (issue 4 asks how long FID@N takes)."""
    rows = []
    for key in keys:
        record = ctx.eval(key)
        if record is None:
            continue
        seconds = record.get("seconds", {})
        inception = sum(v for k, v in seconds.items() if "inception" in k or "fid_kid" in k)
        rows.append([key, str(record.get("num")), fmt(seconds.get("total"), 3), fmt(inception, 3)])
    if not rows:
        return []
    lines = ["## Evaluation cost", "", "Wall-clock seconds of each `ul evaluate` on this machine "]
    lines[-1] += "(shared with the other runs, so indicative only). Inception reference "
    lines[-1] += "statistics are computed once per dataset, split and N and cached in "
    lines[-1] += "`$UL_CACHE_DIR/reference-stats` (default `~/.cache/unified-latents/`)."
    headers = ["run", "N", "total s", "Inception + FID/KID s"]
    return [*lines, "", *markdown_table(headers, rows), ""]


def render_results(args: Any, plan: Mapping[str, Any], sections: Sequence[str]) -> str:
    """The markdown block for the results file; writes the plots and raw JSON beside it."""
    figures = Path(args.results).with_suffix("")
    ctx = Context(Path(args.work_dir), int(args.fid_num), plan, figures)
    work = Path(args.work_dir)
    on_disk = {  # sections with results from earlier invocations are kept in the report
        "table2": (work / "table2" / "sweep" / "sweep.json").exists(),
        "ablations": any(ctx.eval(f"stage1/{row}") for row in ABLATION_ROWS[1:]),
        "flops": any(ctx.eval(f"base/{row}") for row in (KL_VAE, PIXEL)),
        "end-to-end": any(ctx.eval(f"end-to-end/{scheme}") for scheme in SCHEMES),
    }
    ablation_base = args.ablation_base or any(ctx.eval(f"base/{r}") for r in ABLATION_ROWS[2:])
    builders = {
        "table2": lambda: table2_section(ctx),
        "ablations": lambda: ablations_section(ctx, bool(ablation_base)),
        "flops": lambda: flops_section(ctx),
        "end-to-end": lambda: end_to_end_section(ctx),
    }
    built = [build() for name, build in builders.items() if name in sections or on_disk[name]]
    status = plan.get("status", {})
    failed = {name: state for name, state in status.items() if state != "ok"}
    lines = [
        "## Paper experiments at small scale (`benchmarks/paper_tables.py`)",
        "",
        f"**{SCALE_LABEL}.** Fashion-MNIST 32×32 (`--tiny`: 8×8 digits), tiny networks, "
        "minutes of CPU training per model: these numbers test the paper's claims in miniature "
        "and must not be read next to its ImageNet figures.",
        "",
        f"- Last invocation: `{plan.get('command', '')}`, {fmt(plan.get('elapsed_minutes'), 3)} "
        "min (finished runs and current evaluations of earlier invocations are reused); runs in "
        f"`{args.work_dir}` (`plan.json`: budgets and commands; `logs/`: one log per step).",
        f"- Stage-1 budget: {plan.get('stage1_budget', '—')}",
        f"- Sample counts: FID@N uses N samples or reconstructions (N = {args.fid_num} asked for "
        "here; every row's N column gives its own) and the real Inception network; small N "
        "biases FID upwards, so compare rows only at equal N. FD_cls@N is the Fréchet distance "
        "of the shipped Fashion-MNIST classifier's features, not FID (— on other datasets).",
        "- Training FLOPs = optimizer steps × global batch × 3 × forward FLOPs per image "
        "(linear layers, convolutions, attention; spec §10), as recorded by `ul evaluate`.",
        "- Status: "
        + ("every step finished." if not failed else f"{len(failed)} step(s) did not finish:"),
    ]
    lines += [f"  - {name}: {state.splitlines()[0]}" for name, state in failed.items()]
    lines.append("")
    for section in built:
        lines += section.render(figures)
    keys = ["stage1/" + row for row in ABLATION_ROWS] + [f"base/{r}" for r in ABLATION_ROWS]
    keys += [f"base/{PIXEL}"] + [f"end-to-end/{scheme}" for scheme in SCHEMES]
    lines += evaluation_costs(ctx, keys)
    raw = {"plan": plan, "sections": {s.title: s.raw for s in built}}
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "paper_tables.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    lines.append(
        f"Raw numbers: [`{figures.name}/paper_tables.json`]({figures.name}/paper_tables.json)."
    )
    return "\n".join(lines) + "\n"
