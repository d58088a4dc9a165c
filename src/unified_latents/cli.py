"""The `ul` command-line tool. The only module that reads sys.argv.

ul train-autoencoder --preset fashion-mnist [--run-dir DIR] [--set key=value ...] [--dry-run]
ul reconstruct --run AE_RUN [--num 256] [--steps 32] [--sampler ancestral] [--seed 0]
ul encode --run AE_RUN [--shard-size 10000] [--overwrite]
ul train-base --autoencoder AE_RUN --preset fashion-mnist [--set ...] [--dry-run]
ul sample --run BASE_RUN --num 64 [--class K | --prompt TEXT] [--guidance S] ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str) -> None:
    parser.add_argument("--preset", default=default_preset, help="named starting configuration")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run directory (default runs/<stage>-<preset>); reused = resumed",
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

    train_ae = commands.add_parser(
        "train-autoencoder", help="train stage 1: encoder, prior, decoder"
    )
    add_config_arguments(train_ae, "fashion-mnist")

    recon = commands.add_parser("reconstruct", help="encode + decode held-out images; PSNR/SSIM")
    recon.add_argument("--run", type=Path, required=True, help="an autoencoder run directory")
    recon.add_argument("--num", type=int, default=256, help="number of held-out images")
    recon.add_argument("--steps", type=int, default=None, help="decoder sampling steps")
    recon.add_argument("--sampler", choices=("ancestral", "ddim"), default=None)
    recon.add_argument("--seed", type=int, default=0)
    recon.add_argument("--device", default="auto")
    recon.add_argument("--out", type=Path, default=None, help="output directory")

    enc = commands.add_parser("encode", help="cache z_clean of the dataset for stage 2")
    enc.add_argument("--run", type=Path, required=True, help="an autoencoder run directory")
    enc.add_argument("--shard-size", type=int, default=10_000)
    enc.add_argument("--batch-size", type=int, default=256)
    enc.add_argument("--device", default="auto")
    enc.add_argument("--overwrite", action="store_true", help="delete and rebuild the cache")

    train_base = commands.add_parser("train-base", help="train stage 2 on frozen latents")
    train_base.add_argument(
        "--autoencoder", type=Path, default=None, help="the stage-1 run directory"
    )
    add_config_arguments(train_base, "fashion-mnist")

    smp = commands.add_parser("sample", help="base model → latent → decoder → images")
    smp.add_argument("--run", type=Path, required=True, help="a base-model run directory")
    smp.add_argument("--num", type=int, default=64)
    who = smp.add_mutually_exclusive_group()
    who.add_argument("--class", dest="class_label", type=int, default=None)
    who.add_argument("--prompt", default=None, help="text prompt (text-conditioned models)")
    smp.add_argument("--guidance", type=float, default=None, help="classifier-free guidance")
    smp.add_argument(
        "--guidance-interval",
        type=interval,
        default=None,
        metavar="LO,HI",
        help="apply guidance only for log-SNR in [LO, HI]",
    )
    smp.add_argument("--steps", type=int, default=None, help="base-model sampling steps")
    smp.add_argument("--decoder-steps", type=int, default=None)
    smp.add_argument("--sampler", choices=("ancestral", "ddim"), default=None)
    smp.add_argument("--batch-size", type=int, default=None)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--device", default="auto")
    smp.add_argument("--out", type=Path, default=None, help="output directory")
    return parser


def sampling_overrides(args: argparse.Namespace) -> dict[str, object]:
    pairs = {
        "guidance": args.guidance,
        "guidance_interval": args.guidance_interval,
        "base_steps": args.steps,
        "decoder_steps": args.decoder_steps,
        "sampler": args.sampler,
        "batch_size": args.batch_size,
    }
    return {key: value for key, value in pairs.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # heavy imports (torch) only after parsing, so `ul --help` is instant
    from unified_latents.commands import USER_ERRORS
    from unified_latents.commands import autoencoder as ae_commands
    from unified_latents.commands import base as base_commands

    try:
        if args.command == "train-autoencoder":
            return ae_commands.train_autoencoder(
                args.preset, args.assignments, args.run_dir, dry_run=args.dry_run
            )
        if args.command == "reconstruct":
            return ae_commands.reconstruct(
                args.run,
                num=args.num,
                steps=args.steps,
                sampler=args.sampler,
                seed=args.seed,
                device_name=args.device,
                out=args.out,
            )
        if args.command == "encode":
            base_commands.encode(
                args.run,
                shard_size=args.shard_size,
                batch_size=args.batch_size,
                device_name=args.device,
                overwrite=args.overwrite,
            )
            return 0
        if args.command == "train-base":
            return base_commands.train_base(
                args.autoencoder, args.preset, args.assignments, args.run_dir, dry_run=args.dry_run
            )
        if args.command == "sample":
            return base_commands.sample(
                args.run,
                num=args.num,
                class_label=args.class_label,
                prompt=args.prompt,
                overrides=sampling_overrides(args),
                seed=args.seed,
                device_name=args.device,
                out=args.out,
            )
    except USER_ERRORS as error:
        print(f"ul {args.command}: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
