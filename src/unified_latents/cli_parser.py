"""The `ul` command line's arguments: one argparse parser per subcommand. Parsing imports nothing
heavy (no torch), so `ul --help` is instant; `cli.py` runs the parsed command."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    parser.add_argument("--preset", default=default_preset, help="named starting configuration")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run directory (default runs/<kind>-<preset>); reused = resumed",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. optim.lr=1e-4",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config, exit")


# The names of `runs/registry.py: KINDS` (a test checks they agree); here so that `ul --help` does
# not import torch.
RUN_KINDS = ("autoencoder", "base", "pixel", "end-to-end", "decoder-distillation")


def add_shorthands(parser: argparse.ArgumentParser, autoencoder: bool = True) -> None:
    """Options that stand for a `--set`: --target-bits-per-pixel, and --autoencoder."""
    parser.add_argument(
        "--target-bits-per-pixel",
        type=float,
        default=None,
        metavar="R",
        help="autoencoder runs: steer c_lf during training so the latent carries R bits/pixel "
        "(= --set model.target_bits_per_pixel=R; objectives/rate_control.py)",
    )
    if autoencoder:
        parser.add_argument(
            "--autoencoder",
            type=Path,
            default=None,
            help="base runs: the autoencoder run (= --set autoencoder_run=DIR)",
        )


# Under `torchrun ... -m unified_latents.cli`, torchrun's own parser rejects `--run` and `--num`
# as ambiguous abbreviations of its options (--run-path, --numa-binding): use the long aliases
# `--run-dir` and `--num-images` there (docs/distributed.md).
AUTOENCODER_RUN_HELP = "an autoencoder run directory (alias --run-dir)"


def positive_int(text: str) -> int:
    """argparse type for counts (images, steps, batch sizes): an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def interval(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {text!r}") from None
    return low, high


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ul",
        description="Unified Latents: train, sample and "
        "evaluate diffusion-prior/diffusion-decoder autoencoders.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generic = commands.add_parser(
        "train",
        help="train (or resume) a run of any kind",
        description="KIND: autoencoder (stage 1: encoder, prior, decoder), base (stage 2: a base "
        "model on an autoencoder run's latents), pixel (the pixel-space diffusion baseline), "
        "end-to-end (single stage), decoder-distillation (a few-step decoder for an autoencoder "
        "run: --set teacher_run=AE_RUN).",
    )
    generic.add_argument("kind", choices=RUN_KINDS, help="the kind of run")
    add_config_arguments(generic, "fashion-mnist")
    add_shorthands(generic)

    train_ae = commands.add_parser(
        "train-autoencoder", help="= ul train autoencoder (stage 1: encoder, prior, decoder)"
    )
    add_config_arguments(train_ae, "fashion-mnist")
    add_shorthands(train_ae, autoencoder=False)

    distill = commands.add_parser(
        "distill-decoder",
        help="= ul train decoder-distillation --set teacher_run=RUN --set target_steps=N",
        description="Distil the diffusion decoder of an autoencoder run into an N-step decoder "
        "(progressive distillation, Salimans & Ho 2022). The result opens as an autoencoder "
        "(ul reconstruct, ul evaluate, ul.load) and decodes base-model samples with ul sample "
        "--decoder.",
    )
    distill.add_argument(
        "--run", "--teacher", dest="run", type=Path, required=True, help=AUTOENCODER_RUN_HELP
    )
    distill.add_argument(
        "--steps", type=positive_int, default=None, help="decoder steps to distil down to"
    )
    add_config_arguments(distill, "fashion-mnist")

    recon = commands.add_parser("reconstruct", help="encode + decode held-out images; PSNR/SSIM")
    recon.add_argument(
        "--run", "--run-dir", dest="run", type=Path, required=True, help=AUTOENCODER_RUN_HELP
    )
    recon.add_argument(
        "--num", "--num-images", dest="num", type=positive_int, default=256, help="held-out images"
    )
    recon.add_argument("--steps", type=positive_int, default=None, help="decoder sampling steps")
    recon.add_argument("--sampler", choices=("ancestral", "ddim"), default=None)
    recon.add_argument("--seed", type=int, default=0)
    recon.add_argument("--device", default="auto")
    recon.add_argument("--out", type=Path, default=None, help="output directory")

    enc = commands.add_parser("encode", help="cache z_clean of the dataset for stage 2")
    enc.add_argument(
        "--run", "--run-dir", dest="run", type=Path, required=True, help=AUTOENCODER_RUN_HELP
    )
    enc.add_argument("--shard-size", type=positive_int, default=10_000)
    enc.add_argument("--batch-size", type=positive_int, default=256)
    enc.add_argument("--device", default="auto")
    enc.add_argument("--overwrite", action="store_true", help="delete and rebuild the cache")

    train_base = commands.add_parser(
        "train-base", help="= ul train base (or, for --preset pixel-X, ul train pixel --preset X)"
    )
    train_base.add_argument(
        "--autoencoder",
        type=Path,
        default=None,
        help="the stage-1 run directory (omit for pixel-space presets, e.g. pixel-fashion-mnist)",
    )
    add_config_arguments(train_base, "fashion-mnist")

    train_e2e = commands.add_parser(
        "train-end-to-end", help="= ul train end-to-end (encoder, decoder, base model together)"
    )
    add_config_arguments(train_e2e, "fashion-mnist")

    smp = commands.add_parser("sample", help="base model → latent → decoder → images")
    smp.add_argument(
        "--run", "--run-dir", dest="run", type=Path, required=True, help="a base/end-to-end run dir"
    )
    smp.add_argument("--num", "--num-images", dest="num", type=positive_int, default=64)
    who = smp.add_mutually_exclusive_group()
    who.add_argument("--class", dest="class_label", type=int, default=None)
    who.add_argument(
        "--prompt",
        action="append",
        default=None,
        help="text prompt (text-conditioned models); repeat for several: --num samples of each, "
        "captioned grid",
    )
    who.add_argument(
        "--context",
        type=int,
        default=None,
        metavar="INDEX",
        help="frame prediction: context frames of test clips INDEX, INDEX+1, … (default 0)",
    )
    smp.add_argument("--prompt-file", type=Path, default=None, help="prompts, one per line")
    smp.add_argument("--guidance", type=float, default=None, help="classifier-free guidance")
    smp.add_argument(
        "--guidance-interval",
        type=interval,
        default=None,
        metavar="LO,HI",
        help="apply guidance only for log-SNR in [LO, HI]",
    )
    smp.add_argument("--steps", type=positive_int, default=None, help="base-model sampling steps")
    smp.add_argument(
        "--decoder",
        type=Path,
        default=None,
        help="decode with this run's decoder instead, e.g. a decoder-distillation run of the "
        "same autoencoder (its steps and sampler unless --decoder-steps is given)",
    )
    smp.add_argument("--decoder-steps", type=positive_int, default=None)
    add_decoder_samples_argument(smp)
    smp.add_argument("--sampler", choices=("ancestral", "ddim"), default=None)
    smp.add_argument("--batch-size", type=positive_int, default=None)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--device", default="auto")
    add_precision_argument(smp)
    smp.add_argument("--out", type=Path, default=None, help="output directory")
    demo = commands.add_parser("demo", help="the whole job on Fashion-MNIST in bounded time")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--autoencoder-minutes", type=float, default=30.0)
    demo.add_argument("--base-minutes", type=float, default=60.0)
    demo.add_argument("--num-samples", type=positive_int, default=100)
    demo.add_argument("--preset", default="fashion-mnist")
    demo.add_argument("--device", default="auto")
    add_evaluation_commands(commands)
    return parser


def add_decoder_samples_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decoder-samples",
        type=positive_int,
        default=None,
        metavar="K",
        help="each image is the mean of K decoder samples of the same latent (posterior-mean "
        "decoding; K times the decoder cost; default: the run's eval setting, 1)",
    )


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default="fp32",
        help="the networks' precision while sampling: fp32, bf16 autocast, or auto (bf16 where "
        "the device runs it natively, as train.precision=auto); the sampler state stays fp32",
    )


def add_evaluation_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`ul evaluate` and `ul sweep`."""
    ev = commands.add_parser(
        "evaluate",
        help="FID/KID, PSNR/SSIM, bits/pixel, FLOPs of a run → RUN/eval/",
        description="Autoencoder runs: rFID@N/rKID@N of N reconstructions vs the same N test "
        "images, PSNR, SSIM, the prior's bits, FLOPs. Base runs: gFID@N/KID@N of N "
        "class-balanced samples vs N train images, FD_cls@N and classifier accuracy "
        "(Fashion-MNIST), held-out ELBO vs the prior bound, FLOPs, sampling cost. End-to-end "
        "runs: both, with the base model's ELBO as the rate. Every kind records the training "
        "FLOPs spent so far (steps × batch × 3 × forward). Writes "
        "RUN/eval/eval.json and RUN/eval/report.md; reference statistics are cached in "
        "$UL_CACHE_DIR/reference-stats (default ~/.cache/unified-latents/reference-stats).",
    )
    ev.add_argument("--run", "--run-dir", dest="run", type=Path, required=True, help="a run dir")
    ev.add_argument(
        "--num",
        "--num-images",
        dest="num",
        type=positive_int,
        default=1000,
        help="N: reconstructions or samples (the N of FID@N)",
    )
    ev.add_argument("--inception", type=Path, default=None, help="FID Inception TorchScript file")
    ev.add_argument("--no-fid", action="store_true", help="skip Inception (FID/KID)")
    ev.add_argument("--decoder-steps", type=positive_int, default=None)
    ev.add_argument("--base-steps", type=positive_int, default=None, help="base/end-to-end runs")
    ev.add_argument("--guidance", type=float, default=None, help="base/end-to-end runs")
    add_decoder_samples_argument(ev)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    add_precision_argument(ev)

    exp = commands.add_parser(
        "export",
        help="a trained run as a self-contained folder (EMA weights, config, model card)",
        description="Write OUT: the run's EMA weights, resolved config and a README.md model "
        "card with its measured figures (base runs: with their autoencoder). ul.load(OUT), ul "
        "sample and ul reconstruct open it like the run.",
    )
    exp.add_argument("run", type=Path, help="a run directory")
    exp.add_argument("out", type=Path, help="the new folder")

    sw = commands.add_parser(
        "sweep",
        help="train + evaluate one stage-1 model per grid point",
        description="One run directory SWEEP_DIR/<key=value,...> per point of the cartesian "
        "product of the --grid axes. Aliases: loss_factor and c_lf = model.loss_factor, bias and "
        "decoder_bias = model.decoder_bias, logsnr_0 = model.logsnr_0. Re-running resumes: "
        "finished and evaluated points are skipped, half-trained ones continue. Writes "
        "SWEEP_DIR/sweep.json, sweep.md and plots/.",
    )
    sw.add_argument("--preset", default="fashion-mnist", help="autoencoder preset")
    sw.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="a swept config key (aliases: loss_factor, c_lf, bias, decoder_bias, logsnr_0)",
    )
    sw.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--budget-minutes", type=float, default=None, help="training time per point")
    sw.add_argument("--sweep-dir", type=Path, default=None, help="default runs/sweep-<preset>")
    sw.add_argument("--evaluate-num", type=int, default=0, help="N for rFID@N / gFID@N (0: no FID)")
    sw.add_argument("--with-base", action="store_true", help="also a base model per point")
    sw.add_argument("--base-preset", default=None, help="default: the --preset name")
    sw.add_argument(
        "--base-set", dest="base_assignments", action="append", default=[], metavar="KEY=VALUE"
    )
    sw.add_argument("--base-budget-minutes", type=float, default=None)
    sw.add_argument("--inception", type=Path, default=None, help="FID Inception TorchScript file")
