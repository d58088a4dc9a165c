"""`ul export RUN OUT`: a trained model as a self-contained folder to pass around, the way SD-VAE
weights are, which `ul.load(OUT)`, `ul sample` and `ul reconstruct` open like the run itself.

    OUT/config.json                    the resolved config, where it came from, class names
    OUT/checkpoints/step_N/            state.json (config, step) + ema.safetensors (EMA weights)
    OUT/autoencoder/                   base runs: the same for the autoencoder checkpoint its
                                       latents were encoded with; decoder-distillation runs:
                                       for their teacher (whose config rebuilds the networks)
    OUT/README.md                      a model card with the run's measured figures (eval.json)

An export holds no optimizer state: it is for using a model, not for resuming its training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from unified_latents.runs.directory import CONFIG_FILE, RunError, checkpoint_dir, read_run_record
from unified_latents.runs.latents import encoded_from_step, latent_class_names
from unified_latents.training.checkpoint import read_checkpoint, read_latest_checkpoint
from unified_latents.training.state import provenance

EXPORTED_AUTOENCODER = "autoencoder"


def _copy_checkpoint(run_dir: Path, out: Path, step: int | None) -> dict[str, Any]:
    """Copy one checkpoint's EMA weights and state (without optimizer) to OUT/checkpoints."""
    if step is None:
        loaded = read_latest_checkpoint(run_dir / "checkpoints", with_optimizer=False)
    else:
        loaded = read_checkpoint(checkpoint_dir(run_dir, step), with_optimizer=False)
    step = int(loaded.state["step"])
    target = checkpoint_dir(out, step)
    target.mkdir(parents=True)
    shutil.copyfile(loaded.path / "ema.safetensors", target / "ema.safetensors")
    kept = ("step", "training", "config")
    state: dict[str, Any] = {key: loaded.state[key] for key in kept if key in loaded.state}
    (target / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    return state


def _export(run_dir: Path, out: Path, step: int | None = None) -> dict[str, Any]:
    out.mkdir(parents=True)
    state = _copy_checkpoint(run_dir, out, step)
    record = dict(state["config"])
    run = record["run"]
    # The autoencoder run a run depends on, and which of its checkpoints.
    key = {"base": "autoencoder_run", "decoder-distillation": "teacher_run"}.get(record["kind"])
    if key is not None and run.get(key):
        ae_dir = Path(run[key])
        step = encoded_from_step(ae_dir) if key == "autoencoder_run" else run["teacher_step"]
        _export(ae_dir, out / EXPORTED_AUTOENCODER, step or None)
        record = {**record, "run": {**run, key: EXPORTED_AUTOENCODER}}
        state["config"] = record
        target = checkpoint_dir(out, int(state["step"]))
        (target / "state.json").write_text(json.dumps(state, indent=2) + "\n")
        if key == "autoencoder_run":
            record["class_names"] = latent_class_names(ae_dir)
    config = provenance(record) | {"exported_from": str(run_dir.resolve())}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return state


def model_card(run_dir: Path, state: dict[str, Any]) -> str:
    """README.md of an export: what the model is and the figures `ul evaluate` measured."""
    record = state["config"]
    run = record["run"]
    data = run.get("data") or (run.get("pixel") or {}).get("data") or {}
    lines = [
        f"# unified-latents {record['kind']} model",
        "",
        f"- exported from `{run_dir.resolve()}` at optimizer step {state['step']}",
        f"- data: {data.get('name', 'see config.json')} at {data.get('image_size', '?')}px",
        "- weights: the EMA weights (`checkpoints/step_*/ema.safetensors`); the full resolved "
        "config is in `config.json`",
        "- open it with `import unified_latents as ul; ul.load(THIS_FOLDER)`",
        "",
    ]
    evaluation_file = run_dir / "eval" / "eval.json"
    try:
        evaluation = json.loads(evaluation_file.read_text())
    except (OSError, json.JSONDecodeError):
        evaluation = None
    if evaluation is None:
        lines.append("Not evaluated: run `ul evaluate --run RUN` before exporting for figures.")
        return "\n".join(lines) + "\n"
    lines += [
        f"## Measured ({evaluation.get('command', 'ul evaluate')}, "
        f"checkpoint step {evaluation.get('step', '?')})",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for name, value in sorted(evaluation.get("metrics", {}).items()):
        if isinstance(value, float):
            lines.append(f"| {name} | {value:.4g} |")
    total = evaluation.get("training", {}).get("total_flops")
    if total:
        lines.append(f"| training FLOPs | {total:.3g} |")
    return "\n".join(lines) + "\n"


def export(run_dir: Path, out: Path) -> int:
    """Write the export folder (refusing to overwrite a non-empty OUT)."""
    kind = read_run_record(run_dir)["kind"]
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose a new folder for the export")
    if out.exists():
        out.rmdir()
    temporary = out.with_name(f".{out.name}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    state = _export(run_dir, temporary)
    (temporary / "README.md").write_text(model_card(run_dir, state))
    temporary.rename(out)  # all or nothing
    print(f"exported the {kind} run {run_dir} (step {state['step']}) to {out}")
    return 0
