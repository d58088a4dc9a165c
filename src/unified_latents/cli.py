"""The `ul` command-line tool. The only module that reads sys.argv.

ul train-autoencoder --preset fashion-mnist [--run-dir DIR] [--set key=value ...] [--dry-run]
ul reconstruct --run RUN_DIR [--num 256] [--steps 32] [--sampler ancestral] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unified_latents.config import ConfigError, to_dict


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ul",
        description="Unified Latents: train, sample, "
        "evaluate diffusion-prior/diffusion-decoder autoencoders.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train_ae = commands.add_parser(
        "train-autoencoder", help="train stage 1 (encoder, prior, decoder)"
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from unified_latents import commands  # heavy imports (torch) only after parsing

    try:
        if args.command == "train-autoencoder":
            return commands.train_autoencoder(
                args.preset, args.assignments, args.run_dir, dry_run=args.dry_run
            )
        if args.command == "reconstruct":
            return commands.reconstruct(
                args.run,
                num=args.num,
                steps=args.steps,
                sampler=args.sampler,
                seed=args.seed,
                device_name=args.device,
                out=args.out,
            )
    except (ConfigError, *commands.USER_ERRORS) as error:
        print(f"ul {args.command}: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


def print_config(kind: str, config: object) -> None:
    print(json.dumps({"kind": kind, "run": to_dict(config)}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
