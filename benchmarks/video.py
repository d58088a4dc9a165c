"""Issue 17's measurement: UL on moving digits, frame prediction vs the copy-last predictor.

Trains (or resumes) the `moving-digits` autoencoder and, on its cached latents, the
`moving-digits-predict` base model (5 context frames of 16), then runs `ul evaluate` on both
with N test clips: bits/pixel, bits/frame, PSNR/SSIM and rFVD@N of reconstructions; FVD@N and
PSNR of the generated frames of the model and of copy-last (the last context frame repeated).
Writes docs/results/video.json with the issue's keys (`fvd_ul`, `fvd_copy_last`, `n`,
`i3d_port_max_rel_error`) and the rows behind them. In process, through the library's commands;
resumable (finished trainings and evaluations are skipped). Hours on 2 CPU cores:

  .venv/bin/python benchmarks/video.py --work-dir /work/video --num 64 [--kl-vae [--jobs 2]]
  .venv/bin/python benchmarks/video.py --work-dir /tmp/v --tiny   # smoke run, seconds

With `--kl-vae` the per-frame KL-VAE baseline (`kl-vae-moving-digits`: the Stable-Diffusion-style
autoencoder on every frame, the same 8×8×4 latent per frame) gets the same autoencoder steps and
the same base preset and steps, so equal base-model FLOPs (the same base network on the same
latent shape; `base_training_flops` of each row shows it); its figures go under `baselines`.
Its run directories are WORK/kl-vae-*. `--jobs 2` trains and evaluates the two arms at once, each
in its own process with half of the machine's threads. `--ul-set KEY=VALUE` changes the UL
autoencoder only (e.g. `model.loss_factor=6`): give such an arm its own `--work-dir` and `--out`
(its KL arm then trains there too: a base run records its autoencoder's path, so a KL arm linked
in from another work dir is refused on resumption). `--decoder-samples K` decodes each of the UL
model's generated latents as the mean of K decoder samples (`ul evaluate --decoder-samples`:
posterior-mean decoding, K times the decoder cost); reconstructions keep one sample.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from unified_latents.commands.evaluate import evaluate, read_evaluation
from unified_latents.commands.train import train
from unified_latents.runs.directory import latest_training_state
from unified_latents.runs.presets_video import VIDEO_STEPS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "video.json"
I3D_CHECK = ROOT / "docs" / "results" / "i3d_port_check.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="run directories go here")
    parser.add_argument("--num", type=int, default=64, help="N of FVD@N (test clips)")
    parser.add_argument("--autoencoder-steps", type=int, default=VIDEO_STEPS)
    parser.add_argument("--base-steps", type=int, default=VIDEO_STEPS)
    parser.add_argument("--tiny", action="store_true", help="4-frame smoke run (no FVD)")
    parser.add_argument(
        "--kl-vae",
        action="store_true",
        help="also the per-frame KL-VAE baseline (kl-vae-moving-digits) with the same base "
        "preset and steps (equal base FLOPs); its rows go under `baselines`",
    )
    parser.add_argument(
        "--ul-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for the UL autoencoder only (e.g. model.loss_factor=6); "
        "repeatable; give the arm its own --work-dir and --out",
    )
    parser.add_argument(
        "--decoder-samples",
        type=int,
        default=1,
        metavar="K",
        help="UL frame prediction: decode each latent as the mean of K decoder samples",
    )
    parser.add_argument("--jobs", type=int, default=1, help="arms trained at once (1 or 2)")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def evaluated(
    run_dir: Path, num: int, fid: bool, decoder_samples: int | None = None
) -> dict[str, Any]:
    """eval.json of the run's newest checkpoint, measured now unless it already is (same N and
    decoder samples)."""
    previous, newest = read_evaluation(run_dir), latest_training_state(run_dir)
    step = None if newest is None else newest[1].get("step")
    if previous is not None:
        samples = previous.get("settings", {}).get("decoder_samples", 1)
        same = (previous["num"], previous["step"], previous["fid"]) == (num, step, fid)
        if same and (decoder_samples is None or samples == decoder_samples):
            return previous
    return evaluate(run_dir, num=num, fid=fid, decoder_samples=decoder_samples)


def latent_space(
    args: argparse.Namespace, name: str, preset: str, base_preset: str, overrides: list[str]
) -> tuple[dict[str, Any], dict[str, Any], Path, Path]:
    """Train (or resume) one autoencoder (with `overrides`) and its frame-prediction base model
    under WORK/<name>-prefixed run dirs, and evaluate both on N test clips."""
    prefix = "" if name == "ul" else f"{name}-"
    autoencoder, base = args.work_dir / f"{prefix}autoencoder", args.work_dir / f"{prefix}base"
    steps = [] if args.tiny else [f"train.max_steps={args.autoencoder_steps}"]
    if train("autoencoder", preset, [*overrides, *steps], autoencoder) != 0:
        raise SystemExit(f"{name}: autoencoder training failed")
    base_steps = [] if args.tiny else [f"train.max_steps={args.base_steps}"]
    if train("base", base_preset, [f"autoencoder_run={autoencoder}", *base_steps], base) != 0:
        raise SystemExit(f"{name}: base-model training failed")
    stage1 = evaluated(autoencoder, args.num, fid=not args.tiny)
    samples = args.decoder_samples if name == "ul" else None  # the KL decoder is deterministic
    stage2 = evaluated(base, args.num, fid=not args.tiny, decoder_samples=samples)
    return stage1, stage2, autoencoder, base


Arm = tuple[str, str, list[str]]  # (name, autoencoder preset, its overrides)
ArmResult = tuple[dict[str, Any], dict[str, Any], Path, Path]


def _use_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def run_arms(args: argparse.Namespace, arms: list[Arm], base_preset: str) -> list[ArmResult]:
    """`latent_space` of every arm: one after the other, or with `--jobs` > 1 in that many
    processes at once, the machine's threads split between them."""
    if args.jobs <= 1 or len(arms) == 1:
        return [latent_space(args, name, preset, base_preset, sets) for name, preset, sets in arms]
    workers = min(args.jobs, len(arms))
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(workers, context, _use_threads, (threads,)) as pool:
        futures = [
            pool.submit(latent_space, args, name, preset, base_preset, sets)
            for name, preset, sets in arms
        ]
        return [future.result() for future in futures]


UL_KEYS = ("bits_per_pixel", "bits_per_frame", "psnr_db", "ssim", "rfvd")
KL_KEYS = ("kl_bits_per_pixel", "psnr_db", "ssim", "rfvd")  # its KL is no rate bound


def main() -> None:
    args = parse_args()
    tiny = "-tiny" if args.tiny else ""
    base_preset = "moving-digits-tiny" if args.tiny else "moving-digits-predict"
    arms: list[Arm] = [("ul", f"moving-digits{tiny}", args.ul_set)]
    if args.kl_vae:  # the same base preset and steps on per-frame KL latents: equal base FLOPs
        arms.append(("kl-vae", f"kl-vae-moving-digits{tiny}", []))
    measured = run_arms(args, arms, base_preset)
    stage1, stage2, autoencoder, base = measured[0]
    check = json.loads(I3D_CHECK.read_text())
    m1, m2 = stage1["metrics"], stage2["metrics"]
    result = {
        "fvd_ul": m2.get("gfvd"),
        "fvd_copy_last": m2.get("copy_last_fvd"),
        "n": args.num,
        "i3d_port_max_rel_error": max(check["max_relative_error"].values()),
        "predicted_psnr_db_ul": m2.get("gpredicted_psnr_db"),
        "predicted_psnr_db_copy_last": m2.get("copy_last_predicted_psnr_db"),
        "autoencoder": {key: m1.get(key) for key in UL_KEYS},
        "base_elbo_bits_per_pixel": m2.get("base_elbo_bits_per_pixel"),
        "base_training_flops": stage2["flops"].get("training_total_base"),
        "runs": {"autoencoder": str(autoencoder), "base": str(base)},
        "steps": {"autoencoder": stage1.get("step"), "base": stage2.get("step")},
        "settings": {
            "autoencoder": f"moving-digits{tiny}",
            "autoencoder_overrides": args.ul_set,
            "decoder_samples": args.decoder_samples,
            "base": base_preset,
            "tiny": args.tiny,
        },
    }
    if args.kl_vae:
        kl1, kl2, kl_autoencoder, kl_base = measured[1]
        result["baselines"] = [
            {
                "latent_space": "kl-vae",
                "fvd": kl2["metrics"].get("gfvd"),
                "predicted_psnr_db": kl2["metrics"].get("gpredicted_psnr_db"),
                "autoencoder": {key: kl1["metrics"].get(key) for key in KL_KEYS},
                "base_training_flops": kl2["flops"].get("training_total_base"),
                "runs": {"autoencoder": str(kl_autoencoder), "base": str(kl_base)},
                "steps": {"autoencoder": kl1.get("step"), "base": kl2.get("step")},
                "settings": {"autoencoder": arms[1][1], "base": base_preset},
            }
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
