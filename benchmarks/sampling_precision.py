"""Issue 18: does bf16 sampling (`ul sample --precision bf16`) make generation faster at unchanged
quality, on a trained base model?

    OMP_NUM_THREADS=1 python benchmarks/sampling_precision.py --base RUN [--num-timing 100] \\
        [--repeats 3] [--num 1000] [--out benchmarks/results/sampling_precision.json]

Timing: the base run opened through the Python API once per precision (fp32, and bf16 autocast:
`ul.load(RUN, dtype=torch.bfloat16)`, what `ul sample --precision bf16` runs), a 4-image
warm-up each, then `--repeats` rounds of `sample(--num-timing, seed=0)` with the two precisions
alternating (the order flips every round), seconds per image with the run's own sampling
settings (base steps, guidance, decoder steps, batch). Quality: `ul evaluate --num N` of the
run at each precision (the same seed, so the same noise: gFID@N against N training images,
KID, classifier accuracy where the dataset has one), and how far apart the two precisions'
timing samples are (mean |Δ| in 8-bit levels). The run's own eval/ folder is put back
afterwards (these evaluations are kept only in the output JSON). Writes one JSON with the CPU,
whether it runs bf16 natively, the median (min–max) seconds per image of each precision and
the median speed-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import unified_latents as ul
from _throughput_report import cpu_name
from unified_latents.commands.evaluate import EVAL_DIR, evaluate
from unified_latents.training.precision import native_bf16

RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
QUALITY_PREFIXES = ("gFID@", "gKID@", "FD_cls@", "classifier_accuracy", "r1", "r5", "gfvd")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="a trained base-model run")
    parser.add_argument("--num-timing", type=int, default=100, help="images per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num", type=int, default=1000, help="N of gFID@N (0: no evaluation)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sampling_precision.json")
    return parser.parse_args()


def timings(base: Path, num: int, repeats: int) -> tuple[dict[str, list[float]], float]:
    """Seconds per image of each precision, alternating; and the mean |Δ| (8-bit levels)
    between the two precisions' images of the same seed."""
    generators = {name: ul.load(base, dtype=dtype) for name, dtype in PRECISIONS.items()}
    for generator in generators.values():
        generator.sample(4, seed=1)  # type: ignore[union-attr]  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    images: dict[str, torch.Tensor] = {}
    for repeat in range(repeats):
        order = list(PRECISIONS) if repeat % 2 == 0 else list(reversed(PRECISIONS))
        for name in order:
            start = time.perf_counter()
            images[name] = generators[name].sample(num, seed=0)  # type: ignore[union-attr]
            seconds[name].append((time.perf_counter() - start) / num)
            print(f"repeat {repeat}: {name} {seconds[name][-1]:.4f} s/image", flush=True)
    difference = (images["fp32"].float() - images["bf16"].float()).abs().mean().item()
    return seconds, difference


def quality(base: Path, num: int, precision: str) -> dict[str, Any]:
    """`ul evaluate --num num --precision precision` of `base`, leaving its eval/ as it was."""
    kept = base / EVAL_DIR
    with tempfile.TemporaryDirectory(dir=base) as aside:
        if kept.exists():
            kept.rename(Path(aside) / EVAL_DIR)
        try:
            record = evaluate(base, num=num, precision=precision, seed=0, progress=False)
        finally:
            shutil.rmtree(kept, ignore_errors=True)
            if (Path(aside) / EVAL_DIR).exists():
                (Path(aside) / EVAL_DIR).rename(kept)
    metrics = record["metrics"]
    chosen = {key: value for key, value in metrics.items() if key.startswith(QUALITY_PREFIXES)}
    return {**chosen, "sampling_seconds_per_image": record["seconds"].get("sampling_per_sample")}


def main() -> None:
    args = parse_args()
    native, why = native_bf16(torch.device("cpu"))
    seconds, difference = timings(args.base, args.num_timing, args.repeats)
    summary = {
        name: {
            "median_seconds_per_image": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "per_repeat": values,
        }
        for name, values in seconds.items()
    }
    ratios = [f / b for f, b in zip(seconds["fp32"], seconds["bf16"], strict=True)]
    result: dict[str, Any] = {
        "base_run": str(args.base),
        "cpu": cpu_name(),
        "native_bf16": native,
        "native_bf16_why": why,
        "threads": torch.get_num_threads(),
        "settings": {"num_timing": args.num_timing, "repeats": args.repeats, "num": args.num},
        "timing": summary,
        "speedup_bf16_over_fp32": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
        "mean_abs_difference_uint8": difference,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.num:
        result["quality"] = {name: quality(args.base, args.num, name) for name in PRECISIONS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
