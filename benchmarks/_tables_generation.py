"""The generation tables of `paper_tables.py`'s report (`_tables_report.py` has the rest): base
models at equal base-model training FLOPs on UL latents, KL-VAE latents and pixels, and two-stage
vs end-to-end at equal total training FLOPs. Each gives gFID@N, FD_cls@N and class accuracy and
plots the first two for the rows at the report's N."""

from __future__ import annotations

from pathlib import Path

from _tables_format import (
    Context,
    Record,
    Section,
    bars,
    fmt,
    fmt_flops,
    metric,
    part_flops,
    total_flops,
)
from _tables_plan import KL_VAE, PIXEL, SCHEMES, UL

GENERATION_METRICS = ("gFID@N", "FD_cls@N")
Point = tuple[str, float | None, float | None]


def generation_cells(record: Record | None) -> list[str]:
    """gFID@N, FD_cls@N and class accuracy of an evaluation (— where missing)."""
    names = ("gFID@", "FD_cls@", "classifier_accuracy")
    return [fmt(metric(record, name)) for name in names]


def plot_point(ctx: Context, label: str, record: Record | None) -> list[Point]:
    """The row's (label, gFID@N, FD_cls@N) for the plot, if it was measured at the plot's N."""
    if record and record.get("num") == ctx.num:
        return [(label, metric(record, "gFID@"), metric(record, "FD_cls@"))]
    return []


def plot_generation(section: Section, path: Path, points: list[Point], title: str) -> None:
    """Bars of gFID@N and FD_cls@N, added to the section if there was anything to plot."""
    if bars(path, points, GENERATION_METRICS, title):
        section.plots.append(path)


def flops_section(ctx: Context) -> Section:
    budget = ctx.plan.get("base_budget", {})
    headers = [
        "latent space",
        "base steps",
        "batch",
        "training FLOPs/sample",
        "base training FLOPs",
    ]
    headers += ["gFID@N", "FD_cls@N", "class accuracy", "N"]
    headers += ["stage-1 FLOPs (not in budget)"]
    section = Section("Fig. 4 / Table 1 analogue: equal base-model training FLOPs", [], headers)
    section.intro = [
        f"Base models on UL latents, on KL-autoencoder latents and on pixels, each trained for "
        f"the same base-model FLOP budget, {fmt_flops(budget.get('flops'))} FLOPs "
        f"({budget.get('how', 'see plan.json')}). Class accuracy: fraction of samples the shipped "
        "Fashion-MNIST classifier assigns to the class they were generated for."
    ]
    points: list[Point] = []
    for row, label in ((UL, "UL latents"), (KL_VAE, "KL-VAE latents"), (PIXEL, "pixels")):
        key = f"base/{row}"
        record = ctx.eval(key)
        part = (record or {}).get("training", {}).get("parts", {}).get("base", {})
        flops = part_flops(record, "base")
        cells = [label if record else f"{label} ({ctx.missing(key)})"]
        cells += [str((record or {}).get("step", "—")), str(part.get("global_batch_size", "—"))]
        cells += [fmt_flops(part.get("training_flops_per_image")), fmt_flops(flops)]
        cells += [*generation_cells(record), str((record or {}).get("num", "—"))]
        cells += [fmt_flops(part_flops(record, "stage1"))]
        commands = ctx.commands(key)
        if row != PIXEL:
            commands = ctx.commands(f"stage1/{row}") + commands
        section.add(cells, commands, {"space": row, "base": record})
        points += plot_point(ctx, label, record)
    title = f"equal base training FLOPs, N = {ctx.num}"
    plot_generation(section, ctx.figures / "flops_generation.png", points, title)
    found = {label: gfid for label, gfid, _ in points if gfid is not None}
    if "UL latents" in found and "KL-VAE latents" in found:
        better = found["UL latents"] < found["KL-VAE latents"]
        section.findings.append(
            f"UL latents reach a {'lower' if better else 'HIGHER (worse)'} gFID@N than "
            f"KL-VAE latents at equal base FLOPs ({fmt(found['UL latents'])} vs "
            f"{fmt(found['KL-VAE latents'])})"
        )
    return section


def end_to_end_section(ctx: Context) -> Section:
    budget = ctx.plan.get("end_to_end_budget", {})
    headers = ["recipe", "gFID@N", "FD_cls@N", "class accuracy"]
    headers += ["bits/pixel (latent)", "base ELBO bits/pixel", "PSNR (dB)", "N", "steps"]
    headers += ["total training FLOPs"]
    section = Section("Issue 6: two-stage vs end-to-end at equal total training FLOPs", [], headers)
    section.intro = [
        f"Two-stage = the UL stage-1 run + its base model (table above); the single-stage runs "
        f"get the same total training FLOPs, {fmt_flops(budget.get('flops'))} "
        f"({budget.get('how', 'computed once the two-stage runs are evaluated')}). Latent "
        "bits/pixel: the stage-1 prior's bound (two-stage) or the base model's ELBO of z_0 "
        "(single-stage, whose base model is the prior)."
    ]
    ae, base = ctx.eval("stage1/ul"), ctx.eval("base/ul")
    steps = f"{(ae or {}).get('step', '—')} + {(base or {}).get('step', '—')}"
    rows = [("two-stage (UL + base)", base, ae, steps, ["stage1/ul", "base/ul"])]
    for scheme in SCHEMES:
        record = ctx.eval(f"end-to-end/{scheme}")
        step = str((record or {}).get("step", "—"))
        rows.append((f"end-to-end {scheme}", record, record, step, [f"end-to-end/{scheme}"]))
    points: list[Point] = []
    for label, generator, autoencoder, step, keys in rows:
        missing = "; ".join(ctx.missing(key) for key in keys)
        cells = [label if generator else f"{label} ({missing})"]
        cells += generation_cells(generator)
        cells += [fmt(metric(autoencoder, "bits_per_pixel"))]
        cells += [fmt(metric(generator, "base_elbo_bits_per_pixel"))]
        cells += [fmt(metric(autoencoder, "psnr_db")), str((generator or {}).get("num", "—"))]
        cells += [step, fmt_flops(total_flops(generator))]
        commands = [command for key in keys for command in ctx.commands(key)]
        section.add(cells, commands, {"recipe": label, "eval": generator})
        points += plot_point(ctx, label, generator)
    title = f"equal total training FLOPs, N = {ctx.num}"
    plot_generation(section, ctx.figures / "end_to_end_generation.png", points, title)
    columns = ([(p[0], p[1]) for p in points], [(p[0], p[2]) for p in points])
    for name, column in zip(GENERATION_METRICS, columns, strict=True):
        measured = [(label, value) for label, value in column if value is not None]
        if len(measured) > 1:
            label, best = min(measured, key=lambda pair: pair[1])
            section.findings.append(f"lowest {name}: {label} ({fmt(best)})")
    return section
