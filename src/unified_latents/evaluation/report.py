"""The readable side of `ul evaluate`: `report.md` and a one-line summary, from eval.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The order metrics appear in the report and summary; anything else follows alphabetically.
_LEADING = (
    "rFID@",
    "rKID@",
    "gFID@",
    "gKID@",
    "FD_cls@",
    "classifier_accuracy",
    "psnr_db",
    "ssim",
    "bits_per_pixel",
    "bits_per_image",
    "bits_per_latent_dim",
    "base_elbo_bits_per_pixel",
    "prior_bound_bits_per_pixel",
)

_LABELS = {
    "psnr_db": "PSNR (dB)",
    "ssim": "SSIM",
    "bits_per_pixel": "rate, bits/pixel (÷H·W)",
    "bits_per_image": "rate, bits/image",
    "bits_per_latent_dim": "rate, bits/latent dim",
    "distortion_nats": "decoder loss L_x (nats)",
    "base_elbo_bits_per_pixel": "base-model ELBO, bits/pixel",
    "prior_bound_bits_per_pixel": "stage-1 prior bound, bits/pixel",
    "base_elbo_bits_per_latent_dim": "base-model ELBO, bits/latent dim",
    "prior_bound_bits_per_latent_dim": "stage-1 prior bound, bits/latent dim",
    "classifier_accuracy": "classifier accuracy of samples (asked class)",
    "classifier_accuracy_real": "classifier accuracy on real images",
}

_FLOP_LABELS = {
    "encoder_forward_per_image": "encoder forward / image",
    "prior_forward_per_image": "prior forward / image",
    "decoder_forward_per_image": "decoder forward / image",
    "stage1_forward_per_image": "stage-1 forward / image (E + prior + decoder)",
    "stage1_training_per_image": "stage-1 training / image (3 × forward)",
    "reconstruction_per_image": "one reconstruction (E + full decoder sampling)",
    "base_forward_per_sample": "base-model forward / sample",
    "base_training_per_sample": "base-model training / sample (3 × forward)",
    "sampling_per_sample": "one sample (base sampling + decoder sampling)",
    "sampling_base_model_per_sample": "… of which base model (incl. guidance)",
    "sampling_decoder_per_sample": "… of which decoder",
    "base_forward_per_image": "base-model forward / image",
    "end_to_end_forward_per_image": "end-to-end forward / image (E + base + decoder)",
    "end_to_end_training_per_image": "end-to-end training / image (3 × forward)",
    "training_total": "training so far, in total (see Training compute)",
    "training_total_stage1": "… of which stage 1 (autoencoder)",
    "training_total_base": "… of which stage 2 (base model)",
}

_PARTS = {
    "stage1": "stage 1 (autoencoder)",
    "base": "base model",
    "end_to_end": "end-to-end (encoder + decoder + base model)",
}


def _order(name: str) -> tuple[int, str]:
    for index, prefix in enumerate(_LEADING):
        if name.startswith(prefix):
            return index, name
    return len(_LEADING), name


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def format_flops(value: float) -> str:
    for scale, unit in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} FLOP"


def metric_rows(metrics: Mapping[str, float | None], notes: Mapping[str, str]) -> list[str]:
    rows = ["| metric | value | measured as |", "|---|---|---|"]
    for name in sorted(metrics, key=_order):
        if name.endswith("_std") or name in ("num_images", "num_samples"):
            continue
        value = format_value(metrics[name])
        std = metrics.get(f"{name}_std")
        if std is not None:
            value += f" ± {format_value(std)}"
        rows.append(f"| {_LABELS.get(name, name)} | {value} | {notes.get(name, '')} |")
    skipped = [
        f"| {name} | skipped | {text} |" for name, text in notes.items() if name not in metrics
    ]
    return rows + skipped


def training_rows(training: Mapping[str, Any] | None) -> list[str]:
    """The Training compute section: steps × global batch × FLOPs per image, per part."""
    if not training:
        return []
    rows = [
        "## Training compute so far",
        "",
        f"Measured as {training['measured_as']}.",
        "",
        "| part | run | steps | global batch | FLOPs / image | training FLOPs |",
        "|---|---|---|---|---|---|",
    ]
    for part, cost in training["parts"].items():
        rows.append(
            f"| {_PARTS.get(part, part)} | `{cost['run_dir']}` | {cost['step']} | "
            f"{cost['global_batch_size']} | {format_flops(cost['training_flops_per_image'])} | "
            f"{format_flops(cost['training_flops'])} |"
        )
    rows += [f"| **total** | | | | | **{format_flops(training['total_flops'])}** |", ""]
    return rows


def render_report(record: Mapping[str, Any]) -> str:
    """report.md: what was evaluated, tables of metrics, compute and time, images, command."""
    kind = record["kind"]
    settings = "; ".join(f"{key}: {value}" for key, value in record["settings"].items())
    grid = record["images"]["grid"]
    arrays = [record["images"]["arrays"]] if "arrays" in record["images"] else []
    pairs = "odd rows originals, even rows their reconstructions"
    picture = pairs if kind == "autoencoder" else "column k = class k when class-conditional"
    more = [path for name, path in record["images"].items() if name not in ("grid", "arrays")]
    lines = [
        f"# Evaluation of {kind} run `{record['run_dir']}`",
        "",
        f"Checkpoint `{record['checkpoint']}` (step {record['step']}, EMA weights), "
        f"N = {record['num']}, seed {record['seed']}, {record['created']}; trained in "
        f"{record.get('training_precision') or 'unknown precision'}.",
        f"Settings: {settings}.",
        "",
        "FID/KID names carry the number of images N they were computed from: FID is biased "
        "upward for small N and only comparable at equal N (and equal reference set).",
        "",
        "## Metrics",
        "",
        *metric_rows(record["metrics"], record["notes"]),
        "",
        "## Compute",
        "",
        "FLOPs count linear layers, convolutions and attention (2 per multiply-accumulate); "
        "training = 3 × forward (UL-SPEC §10).",
        "",
        "| quantity | FLOPs |",
        "|---|---|",
        *[
            f"| {_FLOP_LABELS.get(name, name)} | {format_flops(value)} |"
            for name, value in record["flops"].items()
        ],
        "",
        *training_rows(record.get("training")),
        "## Time (seconds, this machine)",
        "",
        "| part | seconds |",
        "|---|---|",
        *[f"| {name} | {value:.3g} |" for name, value in record["seconds"].items()],
        "",
        "## Images",
        "",
        f"- `{grid}` ({picture})",
        *[f"- `{path}` ({pairs})" for path in more],
        *[f"- `{path}` (uint8 samples and labels)" for path in arrays],
        "",
        f"![{kind} images]({grid.rsplit('/', 1)[-1]})",
        "",
        "## Command",
        "",
        "```",
        record["command"] or "(called from Python)",
        "```",
        "",
    ]
    return "\n".join(lines)


def summary_line(record: Mapping[str, Any]) -> str:
    """A short one-line summary of the main numbers for the terminal."""
    metrics = record["metrics"]
    wanted = [name for name in sorted(metrics, key=_order) if _order(name)[0] < len(_LEADING)]
    parts = [f"{name}={format_value(metrics[name])}" for name in wanted if "KID" not in name]
    return f"{record['kind']} run, step {record['step']}: " + ", ".join(parts)
