"""Issue 19: what decoding costs and gives, versus decoder steps and sampler.

    python benchmarks/decoder_steps.py --autoencoder RUN [--base BASE_RUN] --num 1000 \\
        --steps 1,2,4,8,16,32,64 --samplers ancestral,ddim --work-dir /work/decoder-steps

For each (sampler, steps): reconstructions of the first N test images from z_0 (the decoder's
training input): PSNR of one decoder sample and of the mean of 8 samples (first 256 images),
SSIM, rFID@N against the whole test split (the reference set of `flops_curve.py`), and seconds
per image; with `--base`, gFID@N of that base model's samples decoded the same way (base model:
its own eval settings, ancestral). One JSON per point under WORK (re-running skips finished
points); then docs/results/fast_decoder.json (rows: decoder, steps, psnr, rfid, gfid, n,
seconds_per_image) and fast_decoder_details.json (everything measured).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _curve_measure import Reference, generation, reconstruction
from _tables_jobs import say
from _tables_plan import read_json
from unified_latents.config import from_dict
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.runs.autoencoder import AutoencoderRunConfig
from unified_latents.runs.directory import latest_training_state, read_run_record

CHECKOUT = Path(__file__).resolve().parents[1]
ROW_KEYS = ("decoder", "steps", "psnr", "rfid", "gfid", "n", "seconds_per_image")


def measure_point(
    args: argparse.Namespace, reference: Reference, sampler: str, steps: int
) -> dict[str, Any]:
    record = reconstruction(
        args.autoencoder,
        reference,
        num=args.num,
        steps=steps,
        decoder_input="noisy",
        seed=args.seed,
        psnr_samples=8,
        sampler=sampler,  # type: ignore[arg-type]
    )
    record["decoder"] = f"diffusion-{sampler}"
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
        "seconds_per_image": record["seconds_per_image"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=None, help="also gFID@N of this base run")
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--steps", default="1,2,4,8,16,32,64")
    parser.add_argument("--samplers", default="ancestral,ddim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--results", type=Path, default=CHECKOUT / "docs" / "results")
    parser.add_argument("--inception", type=Path, default=None, help="TorchScript file")
    args = parser.parse_args(argv)
    data = from_dict(AutoencoderRunConfig, read_run_record(args.autoencoder)["run"]).data
    reference = Reference(InceptionFeatures(args.inception, "cpu"), data)
    records = []
    for sampler in args.samplers.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            path = args.work_dir / f"{sampler}-{steps:03d}.json"
            result = read_json(path)
            if result is None:
                say(f"▶ {sampler}, {steps} steps")
                result = measure_point(args, reference, sampler, steps)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2) + "\n")
            records.append(result)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "fast_decoder.json").write_text(
        json.dumps([row(r) for r in records], indent=2) + "\n"
    )
    (args.results / "fast_decoder_details.json").write_text(json.dumps(records, indent=2) + "\n")
    say(f"wrote {args.results / 'fast_decoder.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
