"""Issue 19: what decoding costs and gives, versus decoder steps and sampler.

    python benchmarks/decoder_steps.py --autoencoder RUN [--base BASE_RUN] --num 1000 \\
        --steps 1,2,4,8,16,32,64 --samplers ancestral,ddim --work-dir /work/decoder-steps \\
        [--distilled DISTILL_RUN[@CHECKPOINT] ...]

For each (sampler, steps): reconstructions of the first N test images from z_0 (the decoder's
training input): PSNR of one decoder sample and of the mean of 8 samples (first 256 images),
SSIM, rFID@N against the whole test split (the reference set of `flops_curve.py`), and seconds
per image; with `--base`, gFID@N of that base model's samples decoded the same way (base model:
its own eval settings, ancestral). `--distilled` adds the student of a `ul distill-decoder` run
(newest checkpoint, or @CHECKPOINT, e.g. the end of an earlier phase) at the steps it was
distilled for, DDIM. One JSON per point under WORK (re-running skips finished points; two
invocations on one WORK, e.g. one per sampler, may run at once); then, from every point in WORK,
docs/results/fast_decoder.json (rows: decoder, steps, psnr, rfid, gfid, n, seconds_per_image) and
fast_decoder_details.json (everything measured). `seconds_per_image` is end-to-end sampling
(base model + decoder) per generated image where `--base` is given, else decoding per
reconstruction; both are wall-clock times, comparable only between points measured under the
same load.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from _curve_measure import (
    DEVICE,
    Reference,
    decode_latents,
    generation,
    reconstruction,
    stage1_model,
)
from _tables_jobs import say
from _tables_plan import read_json
from unified_latents.config import from_dict
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import latest_training_state, read_run_record
from unified_latents.runs.registry import kind_of
from unified_latents.visualize import save_image_grid

CHECKOUT = Path(__file__).resolve().parents[1]
ROW_KEYS = ("decoder", "steps", "psnr", "rfid", "gfid", "n", "seconds_per_image")


@dataclass(frozen=True)
class Point:
    """One measurement: a decoder (the autoencoder's, or a distilled student) and its sampling."""

    name: str  # the file name under WORK, without .json
    decoder: str  # the row's "decoder"
    sampler: str
    steps: int
    run: Path | None = None  # a distillation run (None: the autoencoder's own decoder)
    checkpoint: int | None = None


def distilled_point(spec: str) -> Point:
    """`RUN` or `RUN@CHECKPOINT` → the student of that checkpoint, at its own step count."""
    path, _, step = spec.partition("@")
    checkpoint = int(step) if step else None
    run = Path(path)
    model = kind_of(run).autoencoder(run, DEVICE, checkpoint).model
    steps = int(getattr(model, "steps", 0))
    if not steps:
        raise SystemExit(f"{run} is not a decoder-distillation run (its decoder has no step count)")
    label = f"distilled-{run.name}" + (f"-at{checkpoint}" if checkpoint is not None else "")
    return Point(label, "distilled-ddim", "ddim", steps, run, checkpoint)


def measure_point(args: argparse.Namespace, reference: Reference, point: Point) -> dict[str, Any]:
    sampler, steps = point.sampler, point.steps
    record = reconstruction(
        point.run or args.autoencoder,
        reference,
        num=args.num,
        steps=steps,
        decoder_input="noisy",
        seed=args.seed,
        psnr_samples=8,
        sampler=sampler,  # type: ignore[arg-type]
        checkpoint=point.checkpoint,
    )
    record["decoder"] = point.decoder
    if point.run is not None:
        record["distillation_run"] = str(point.run)
    if args.base is not None:
        newest = latest_training_state(args.base)
        if newest is None:
            raise SystemExit(f"{args.base} has no checkpoint yet")
        config = read_run_record(args.base)["run"]["eval"]
        generated, _ = generation(
            args.base,
            int(newest[1]["step"]),
            reference,
            num=args.num,
            seed=args.seed,
            guidance=config["guidance"],
            base_steps=config["base_steps"],
            decoder_steps=steps,
            decoder_input="clean",
            decoder_sampler=sampler,  # type: ignore[arg-type]
            decoder=None if point.run is None else (point.run, point.checkpoint),
        )
        record["generation"] = generated
    return record


def row(record: dict[str, Any]) -> dict[str, Any]:
    generated = record.get("generation") or {}
    return {
        "decoder": record["decoder"],
        "steps": record["decoder_steps"],
        "psnr": record["psnr"],
        "rfid": record["rfid"],
        "gfid": generated.get("gfid"),
        "n": record["num"],
        "seconds_per_image": generated.get("seconds_per_sample", record["seconds_per_image"]),
    }


def comparison_grid(
    args: argparse.Namespace, points: list[Point], reference: Reference, path: Path
) -> Path:
    """One row per point (after a row of originals): reconstructions of the same `args.grid`
    test images from the same z_0 noise and decoder seed, 4× enlarged."""
    images = reference.real.images[: args.grid]
    rows = [images]
    for point in points:
        model, _ = stage1_model(point.run or args.autoencoder, point.checkpoint)
        rows.append(
            decode_latents(
                model,
                images,
                steps=point.steps,
                decoder_input="noisy",
                seed=args.seed,
                sampler=point.sampler,  # type: ignore[arg-type]
            )
        )
    return save_image_grid(torch.cat(rows), path, num_columns=args.grid, scale=4)


def every_point(work_dir: Path) -> list[dict[str, Any]]:
    """Every finished point under WORK (also another invocation's), ordered by decoder, then
    steps: the autoencoder's decoder by sampler, then the distilled students."""
    records = [read_json(path) for path in sorted(work_dir.glob("*.json"))]
    found = [record for record in records if record is not None]
    return sorted(found, key=lambda r: (r["decoder"], r["decoder_steps"], r["stage1_step"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=None, help="also gFID@N of this base run")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--steps", default="1,2,4,8,16,32,64")
    parser.add_argument("--samplers", default="ancestral,ddim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--distilled",
        action="append",
        default=[],
        metavar="RUN[@CHECKPOINT]",
        help="also a decoder-distillation run's student (repeatable)",
    )
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--results", type=Path, default=CHECKOUT / "docs" / "results")
    parser.add_argument("--inception", type=Path, default=None, help="TorchScript file")
    parser.add_argument(
        "--grid",
        type=int,
        default=0,
        metavar="K",
        help="also fast_decoder_grid.png: K test images reconstructed by each point of this call",
    )
    args = parser.parse_args(argv)
    data = from_dict(AutoencoderRunConfig, read_run_record(args.autoencoder)["run"]).data
    reference = Reference(InceptionFeatures(args.inception, "cpu"), data)
    points = [
        Point(f"{sampler}-{steps:03d}", f"diffusion-{sampler}", sampler, steps)
        for sampler in args.samplers.split(",")
        if sampler
        for steps in (int(s) for s in args.steps.split(",") if s)
    ]
    points += [distilled_point(spec) for spec in args.distilled]
    for point in points:
        path = args.work_dir / f"{point.name}.json"
        if read_json(path) is None:
            say(f"▶ {point.decoder}, {point.steps} steps")
            result = measure_point(args, reference, point)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(result, indent=2) + "\n")
            temporary.replace(path)
    records = every_point(args.work_dir)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "fast_decoder.json").write_text(
        json.dumps([row(r) for r in records], indent=2) + "\n"
    )
    (args.results / "fast_decoder_details.json").write_text(json.dumps(records, indent=2) + "\n")
    say(f"wrote {args.results / 'fast_decoder.json'}")
    if args.grid:
        grid = comparison_grid(args, points, reference, args.results / "fast_decoder_grid.png")
        say(f"wrote {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
