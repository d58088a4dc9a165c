"""The `ul` command-line tool. The only module that reads sys.argv.

ul train-autoencoder --preset fashion-mnist [--run-dir DIR] [--set key=value ...] [--dry-run]
ul train-autoencoder --preset fashion-mnist --target-bits-per-pixel 0.1   (c_lf steered to a rate)
ul reconstruct --run AE_RUN [--num 256] [--steps 32] [--sampler ancestral] [--seed 0]
ul encode --run AE_RUN [--shard-size 10000] [--overwrite]
ul train-base --autoencoder AE_RUN --preset fashion-mnist [--set ...] [--dry-run]
ul train-base --preset pixel-fashion-mnist            (pixel-space diffusion, no autoencoder)
ul train-end-to-end --preset fashion-mnist [--set scheme=shifted-decoder] [--set ...] [--dry-run]
ul sample --run BASE_RUN --num 64 [--class K | --prompt TEXT] [--guidance S] ...
ul evaluate --run RUN [--num 1000] [--inception PATH] [--no-fid] [--guidance S] ...
ul sweep --preset P --grid loss_factor=1.2,1.5,2.0 --grid bias=-2,0,2 [--budget-minutes M] ...
ul export RUN OUT                 (EMA weights + config + model card; ul.load(OUT) opens it)

Exit status: 0 finished; 2 a user error (one line on stderr); 75 stopped by SIGTERM/Ctrl-C after
writing a checkpoint (re-run the same command to resume; commands.INTERRUPTED_EXIT_CODE).
"""

from __future__ import annotations

import argparse
import shlex
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

    train_ae = commands.add_parser(
        "train-autoencoder", help="train stage 1: encoder, prior, decoder"
    )
    add_config_arguments(train_ae, "fashion-mnist")
    train_ae.add_argument(
        "--target-bits-per-pixel",
        type=float,
        default=None,
        metavar="R",
        help="steer c_lf during training so the latent carries R bits/pixel "
        "(= --set model.target_bits_per_pixel=R; objectives/rate_control.py)",
    )

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

    train_base = commands.add_parser("train-base", help="train stage 2 on frozen latents")
    train_base.add_argument(
        "--autoencoder",
        type=Path,
        default=None,
        help="the stage-1 run directory (omit for pixel-space presets, e.g. pixel-fashion-mnist)",
    )
    add_config_arguments(train_base, "fashion-mnist")

    train_e2e = commands.add_parser(
        "train-end-to-end", help="train encoder, decoder and base model together (single stage)"
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
    smp.add_argument("--decoder-steps", type=positive_int, default=None)
    smp.add_argument("--sampler", choices=("ancestral", "ddim"), default=None)
    smp.add_argument("--batch-size", type=positive_int, default=None)
    smp.add_argument("--seed", type=int, default=0)
    smp.add_argument("--device", default="auto")
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
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")

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


def sample_prompts(args: argparse.Namespace) -> list[str] | None:
    from unified_latents.commands.prompts import read_prompts
    from unified_latents.conditions import ConditionError

    if args.prompt_file is not None and args.class_label is not None:
        raise ConditionError("--prompt-file and --class exclude each other")
    return read_prompts(args.prompt, args.prompt_file)


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
    from unified_latents.commands import INTERRUPTED_EXIT_CODE, USER_ERRORS, Interrupted
    from unified_latents.commands import autoencoder as ae_commands
    from unified_latents.commands import base as base_commands
    from unified_latents.training.cpu_allocator import keep_freed_memory

    keep_freed_memory()  # every command: large tensors reuse the heap (training/cpu_allocator.py)

    try:
        if args.command == "train-autoencoder":
            assignments = list(args.assignments)
            if args.target_bits_per_pixel is not None:
                assignments.append(f"model.target_bits_per_pixel={args.target_bits_per_pixel}")
            return ae_commands.train_autoencoder(
                args.preset, assignments, args.run_dir, dry_run=args.dry_run
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
        if args.command == "demo":
            from unified_latents.commands.demo import demo

            return demo(
                args.out,
                autoencoder_minutes=args.autoencoder_minutes,
                base_minutes=args.base_minutes,
                num_samples=args.num_samples,
                preset=args.preset,
                device_name=args.device,
            )
        if args.command == "train-end-to-end":
            from unified_latents.commands.end_to_end import train_end_to_end

            return train_end_to_end(
                args.preset, args.assignments, args.run_dir, dry_run=args.dry_run
            )
        if args.command in ("evaluate", "sweep"):
            command_line = "ul " + shlex.join(sys.argv[1:] if argv is None else argv)
            return run_evaluation_command(args, command_line)
        if args.command == "export":
            from unified_latents.commands.export import export

            return export(args.run, args.out)
        if args.command == "sample":
            return base_commands.sample(
                args.run,
                num=args.num,
                class_label=args.class_label,
                prompt=sample_prompts(args),
                overrides=sampling_overrides(args),
                seed=args.seed,
                device_name=args.device,
                out=args.out,
            )
    except Interrupted as stop:
        print(f"ul {args.command}: {stop}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except USER_ERRORS as error:
        print(f"ul {args.command}: error: {error}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


def run_evaluation_command(args: argparse.Namespace, command_line: str) -> int:
    if args.command == "evaluate":
        from unified_latents.commands.evaluate import evaluate

        evaluate(
            args.run,
            num=args.num,
            inception=args.inception,
            decoder_steps=args.decoder_steps,
            base_steps=args.base_steps,
            guidance=args.guidance,
            seed=args.seed,
            device_name=args.device,
            fid=not args.no_fid,
            command=command_line,
        )
        return 0
    from unified_latents.commands.sweep import SweepOptions, sweep

    return sweep(
        SweepOptions(
            preset=args.preset,
            grid=args.grid,
            assignments=args.assignments,
            budget_minutes=args.budget_minutes,
            sweep_dir=args.sweep_dir,
            evaluate_num=args.evaluate_num,
            with_base=args.with_base,
            base_preset=args.base_preset,
            base_assignments=args.base_assignments,
            base_budget_minutes=args.base_budget_minutes,
            inception=args.inception,
            command=command_line,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
