"""The report phase of `flops_curve.py`: docs/results/flops_curve.json (the issue's exact row
keys), flops_curve_details.json (everything else: selections, KID, intervals, commands, clipping,
stage-1 curves), the plots, and a Markdown table in WORK/report.md for docs/results.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _curve_eval import (
    DECODER_GRID,
    GUIDANCE_GRID,
    Evaluation,
    read,
)
from flops_curve import Arm, Plan
from unified_latents.training.metrics_log import read_metrics


def batch_size(run_dir: Path) -> int:
    record = json.loads((run_dir / "config.json").read_text())["config"]
    return int(record["run"]["train"]["batch_size"])


def curve_rows(evaluation: Evaluation) -> list[dict[str, Any]]:
    """One row per (arm, checkpoint, seed) measured so far."""
    plan, rows = evaluation.plan, []
    for arm in evaluation.arms:
        recon = read(evaluation.root / "recon" / f"{plan.stage1_dir(arm).name}.json")
        stage1_flops = 0.0
        if arm.stage1:
            if recon is None:
                continue
            stage1_batch = batch_size(plan.stage1_dir(arm))
            per_image = recon["stage1_training_flops_per_image"]
            stage1_flops = recon["stage1_step"] * stage1_batch * per_image
        for path in sorted((evaluation.root / "curve" / arm.name).glob("step*.json")):
            record = read(path)
            if record is None:
                continue
            base_flops = (
                record["step"] * record["batch_size"] * record["base_training_flops_per_sample"]
            )
            row: dict[str, Any] = {
                "arm": arm.name,
                "latent_space": arm.latent_space,
                "base_flops": base_flops,
                "total_flops": base_flops + stage1_flops,
                "base_steps": record["step"],
                "gfid": record["gfid"],
                "n": record["num"],
                "fd_cls": record["fd_cls"],
                "class_accuracy": record["class_accuracy"],
                "guidance": record["guidance"],
                "seed": record["seed"],
            }
            if recon is not None:
                if arm.latent_space == "ul":
                    row["bits_per_pixel"] = recon["bits_per_pixel"]
                else:
                    row["kl"] = recon["kl"]
                row |= {"psnr": recon["psnr"], "rfid": recon["rfid"]}
                row["latent_std"] = record["raw_latent_std"]
            rows.append(row)
    return rows


def details(evaluation: Evaluation, earlier: dict[str, Any]) -> dict[str, Any]:
    """Everything measured under WORK/evals; `earlier` is the details file this overwrites."""
    plan, root = evaluation.plan, evaluation.root
    out: dict[str, Any] = {"plan": read(plan.work_dir / "plan.json")}
    if plan.decoder:  # given, not chosen here: keep the grid of the run that chose it
        out["decoder_selection"] = earlier.get("decoder_selection", {})
        out["decoder_selection_source"] = earlier.get("decoder_selection_source") or (
            f"an earlier run of the same stage-1 configurations, commit "
            f"{earlier.get('plan', {}).get('commits', {}).get('train', 'unknown')}"
        )
    else:
        out["decoder_selection"] = {
            plan.stage1_dir(arm).name: {
                f"{steps}-{source}": read(evaluation.decoder_path(arm, steps, source))
                for steps, source in DECODER_GRID
            }
            for arm in evaluation.ul_arms()
        }
    out["decoder_choice"] = evaluation.decoder_choice()
    out["guidance_selection"] = {
        arm.name: {
            str(step): {
                "chosen": evaluation.guidance_choice(arm, step),
                **{f"{g:g}": read(evaluation.guidance_path(arm, step, g)) for g in GUIDANCE_GRID},
            }
            for step in plan.budgets(arm)
        }
        for arm in evaluation.arms
    }
    out["decoder_input_generation"] = {
        arm.name: {
            source: read(root / "decoder-input" / arm.name / f"{source}.json")
            for source in ("clean", "noisy")
        }
        for arm in evaluation.ul_arms()
    }
    out["reconstruction"] = {
        path.stem: read(path) for path in sorted((root / "recon").glob("*.json"))
    }
    out["curve"] = {
        arm.name: [read(p) for p in sorted((root / "curve" / arm.name).glob("step*.json"))]
        for arm in evaluation.arms
    }
    out["training"] = {arm.name: training_summary(plan, arm) for arm in evaluation.arms}
    return out


def training_summary(plan: Plan, arm: Arm) -> dict[str, Any]:
    """Fraction of gradient-clipped steps per run, and the stage-1 held-out curve."""
    summary: dict[str, Any] = {}
    runs = {"base": plan.base_dir(arm)}
    if arm.stage1:
        runs["stage1"] = plan.stage1_dir(arm)
    for part, run_dir in runs.items():
        records = read_metrics(run_dir)
        train = [r for r in records if r.get("split") == "train" and "clipped_fraction" in r]
        if train:
            clipped = sum(r["clipped_fraction"] for r in train) / len(train)
            late = train[len(train) // 2 :]
            summary[f"{part}_clipped_fraction"] = clipped
            summary[f"{part}_clipped_fraction_second_half"] = sum(
                r["clipped_fraction"] for r in late
            ) / len(late)
        if part == "stage1":
            keep = ("psnr_db", "bits_per_pixel", "kl_bits_per_pixel", "ssim")
            summary["stage1_eval_curve"] = [
                {"step": r["step"], **{k: r[k] for k in keep if k in r}}
                for r in records
                if r.get("split") == "eval"
            ]
    return summary


def xy(rows: list[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    return [row[x] for row in rows], [row[y] for row in rows]


def bootstrap_std(info: dict[str, Any], arm: str) -> dict[tuple[int, int], float]:
    """(step, seed) → bootstrap std of gFID, where one was measured."""
    records = [r for r in info["curve"].get(arm, []) if r and "gfid_bootstrap_std" in r]
    return {(r["step"], r["seed"]): r["gfid_bootstrap_std"] for r in records}


def plot(rows: list[dict[str, Any]], info: dict[str, Any], results: Path, top: int) -> None:
    """flops_curve.png (gFID vs base and total FLOPs, class accuracy) and, for the UL arms at
    `top` base steps (the common largest budget: extended arms go further), gFID/rFID vs bits."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = rows[0]["n"]
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for arm in sorted({row["arm"] for row in rows}):
        mine = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["base_steps"])
        first, extra = [r for r in mine if r["seed"] == 0], [r for r in mine if r["seed"] != 0]
        spread = bootstrap_std(info, arm)
        for ax, x_key in zip(axes[:2], ("base_flops", "total_flops"), strict=True):
            (line,) = ax.plot(*xy(first, x_key, "gfid"), "o-", label=arm)
            ax.plot(*xy(extra, x_key, "gfid"), "x", color=line.get_color())
            for row in (r for r in first if (r["base_steps"], r["seed"]) in spread):
                error = spread[row["base_steps"], row["seed"]]
                ax.errorbar(row[x_key], row["gfid"], yerr=error, color=line.get_color())
        axes[2].plot(*xy(first, "base_flops", "class_accuracy"), "o-", label=arm)
    labels = ("base-model training FLOPs", "total training FLOPs (stage 1 + base)")
    for ax, label in zip(axes[:2], labels, strict=True):
        ax.set(xscale="log", xlabel=label, ylabel=f"gFID@{n} (lower is better)")
        ax.grid(alpha=0.3)
    axes[2].set(xscale="log", xlabel=labels[0], ylabel="class accuracy of the samples")
    axes[2].grid(alpha=0.3)
    for ax in axes:
        # a curve spans about a decade: ticks at 1, 2 and 5 × 10^k (the measured budgets, ticked
        # before, overlap where arms differ by a few per cent or one arm starts where another ends)
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=30)
    axes[0].legend()
    figure.suptitle(
        "Fashion-MNIST 32×32, small scale (2-core CPU); bars: bootstrap std; x: second seed"
    )
    figure.tight_layout()
    figure.savefig(results / "flops_curve.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    ul = [r for r in rows if r["latent_space"] == "ul" and r["base_steps"] == top]
    ul = [r for r in ul if r["seed"] == 0]
    axes[0].plot(*xy(ul, "bits_per_pixel", "gfid"), "o", label="gFID")
    axes[0].plot(*xy(ul, "bits_per_pixel", "rfid"), "s", label="rFID")
    for r in ul:
        axes[0].annotate(r["arm"], (r["bits_per_pixel"], r["gfid"]))
    axes[0].set(xlabel="latent bits/pixel (prior bound)", ylabel=f"FID@{n}")
    axes[0].set_title(f"UL arms at the largest budget ({top} base steps)")
    axes[0].legend()
    for arm, summary in info["training"].items():
        curve = [c for c in summary.get("stage1_eval_curve", []) if "psnr_db" in c]
        if curve:
            axes[1].plot(*xy(curve, "step", "psnr_db"), "o-", label=arm)
    axes[1].set(xlabel="stage-1 step", ylabel="held-out PSNR (dB; UL: one decoder sample)")
    axes[1].set_title("stage 1 during training")
    if axes[1].lines:
        axes[1].legend()
    figure.tight_layout()
    figure.savefig(results / "flops_curve_bits_and_stage1.png", dpi=110)
    plt.close(figure)


HEADER = (
    "| arm | base steps | seed | guidance | gFID@N | FD_cls | class acc. | base FLOPs "
    "| total FLOPs | rFID@N | PSNR | bits/px or KL |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def sample_strips(info: dict[str, Any], results: Path, rows_per_arm: int = 3) -> None:
    """flops_curve_samples.png: the first `rows_per_arm` rows (one sample per class in each) of
    every arm's seed-0 grid at its largest measured budget, one arm below the other."""
    from PIL import Image, ImageDraw

    strips = []
    for arm, records in sorted(info["curve"].items()):
        done = [r for r in records if r and r["seed"] == 0 and Path(r.get("grid", "")).is_file()]
        if done:
            top = max(done, key=lambda r: r["step"])
            grid = Image.open(top["grid"]).convert("RGB")
            height = round(grid.height / 10 * rows_per_arm)  # the grids have 10 rows
            label = f"{arm}\n{top['step']} steps\nguidance {top['guidance']:g}"
            strips.append((label, grid.crop((0, 0, grid.width, height))))
    if not strips:
        return
    margin = 110
    width, height = margin + max(s.width for _, s in strips), sum(s.height for _, s in strips)
    figure = Image.new("RGB", (width, height), "white")
    draw, top_y = ImageDraw.Draw(figure), 0
    for label, strip in strips:
        figure.paste(strip, (margin, top_y))
        draw.text((6, top_y + strip.height // 2 - 18), label, fill="black")
        top_y += strip.height
    figure.save(results / "flops_curve_samples.png")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER]
    for r in sorted(rows, key=lambda r: (r["arm"], r["base_steps"], r["seed"])):
        rate = "–"
        if "bits_per_pixel" in r:
            rate = f"{r['bits_per_pixel']:.3f} b/px"
        elif "kl" in r:
            rate = f"KL {r['kl']:.0f} nats"
        recon = f"{r['rfid']:.1f} | {r['psnr']:.2f}" if "rfid" in r else "– | –"
        lines.append(
            f"| {r['arm']} | {r['base_steps']} | {r['seed']} | {r['guidance']:g} "
            f"| {r['gfid']:.2f} | {r['fd_cls']:.2f} | {r['class_accuracy']:.3f} "
            f"| {r['base_flops']:.3g} | {r['total_flops']:.3g} | {recon} | {rate} |"
        )
    return "\n".join(lines) + "\n"


def write_report(plan: Plan, arms: list[Arm], *, num: int, results: Path) -> None:
    evaluation = Evaluation(plan, arms, num)
    rows = curve_rows(evaluation)
    path = results / "flops_curve_details.json"
    info = details(evaluation, json.loads(path.read_text()) if path.is_file() else {})
    results.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n")
    if rows:  # no curve point yet: no flops_curve.json that could pass for a result
        (results / "flops_curve.json").write_text(json.dumps(rows, indent=2) + "\n")
        (plan.work_dir / "report.md").write_text(markdown(rows))
        plot(rows, info, results, top=plan.base_steps)
        sample_strips(info, results)
