"""The `ul` command-line tool. The only module that reads sys.argv.

ul train KIND --preset P [--run-dir DIR] [--set key=value ...] [--dry-run]
    KIND: autoencoder (stage 1), base (stage 2; --autoencoder AE_RUN), pixel (pixel-space
    baseline), end-to-end (single stage); runs/registry.py. Re-running resumes.
ul train autoencoder --preset fashion-mnist --target-bits-per-pixel 0.1   (c_lf steered to a rate)
ul reconstruct --run AE_RUN [--num 256] [--steps 32] [--sampler ancestral] [--seed 0]
ul encode --run AE_RUN [--shard-size 10000] [--overwrite]
ul train-autoencoder / train-base [--autoencoder AE_RUN] / train-end-to-end: the same as
    `ul train autoencoder / base / end-to-end` (train-base --preset pixel-X: train pixel --preset X)
ul sample --run BASE_RUN --num 64 [--class K | --prompt TEXT] [--guidance S] ...
ul evaluate --run RUN [--num 1000] [--inception PATH] [--no-fid] [--guidance S] ...
ul sweep --preset P --grid loss_factor=1.2,1.5,2.0 --grid bias=-2,0,2 [--budget-minutes M] ...
ul export RUN OUT                 (EMA weights + config + model card; ul.load(OUT) opens it)
ul distill-decoder --run AE_RUN --steps 4
    (= ul train decoder-distillation --set teacher_run=AE_RUN --set target_steps=4);
    ul sample --run BASE_RUN --decoder DISTILLED_RUN decodes with the distilled decoder

Exit status: 0 finished; 2 a user error (one line on stderr); 75 stopped by SIGTERM/Ctrl-C after
writing a checkpoint (re-run the same command to resume; commands.INTERRUPTED_EXIT_CODE).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from unified_latents.cli_parser import build_parser


def shorthand_assignments(args: argparse.Namespace) -> list[str]:
    assignments = list(args.assignments)
    if getattr(args, "target_bits_per_pixel", None) is not None:
        assignments.append(f"model.target_bits_per_pixel={args.target_bits_per_pixel}")
    if getattr(args, "autoencoder", None) is not None:
        assignments.append(f"autoencoder_run={args.autoencoder}")
    return assignments


def named(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options `names` of `args`, as keyword arguments of the same names."""
    return {name: getattr(args, name) for name in names}


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
        "decoder_samples": args.decoder_samples,
        "sampler": args.sampler,
        "batch_size": args.batch_size,
    }
    return {key: value for key, value in pairs.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # heavy imports (torch) only after parsing, so `ul --help` is instant
    from unified_latents.commands import INTERRUPTED_EXIT_CODE, USER_ERRORS, Interrupted
    from unified_latents.training.cpu_allocator import keep_freed_memory

    keep_freed_memory()  # every command: large tensors reuse the heap (training/cpu_allocator.py)

    try:
        return run_command(args, argv)
    except Interrupted as stop:
        print(f"ul {args.command}: {stop}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except USER_ERRORS as error:
        print(f"ul {args.command}: error: {error}", file=sys.stderr)
        return 2


TRAINING_ALIASES = {"train-autoencoder": "autoencoder", "train-end-to-end": "end-to-end"}


def run_command(args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.command in ("train", *TRAINING_ALIASES):
        from unified_latents.commands.train import train

        kind = TRAINING_ALIASES.get(args.command, getattr(args, "kind", ""))
        assignments = shorthand_assignments(args)
        return train(kind, args.preset, assignments, args.run_dir, dry_run=args.dry_run)
    if args.command == "distill-decoder":
        from unified_latents.commands.train import train

        assignments = [f"teacher_run={args.run}", *args.assignments]
        if args.steps is not None:
            assignments.insert(1, f"target_steps={args.steps}")
        kind = "decoder-distillation"
        return train(kind, args.preset, assignments, args.run_dir, dry_run=args.dry_run)
    if args.command == "train-base":
        from unified_latents.commands.train import train_base_alias

        return train_base_alias(
            args.autoencoder, args.preset, args.assignments, args.run_dir, dry_run=args.dry_run
        )
    if args.command == "reconstruct":
        from unified_latents.commands.reconstruct import reconstruct

        return reconstruct(
            args.run,
            device_name=args.device,
            **named(args, "num", "steps", "sampler", "seed", "out"),
        )
    if args.command == "encode":
        from unified_latents.runs.latents import encode

        encode(
            args.run,
            device_name=args.device,
            **named(args, "shard_size", "batch_size", "overwrite"),
        )
        return 0
    if args.command == "demo":
        from unified_latents.commands.demo import demo

        return demo(
            args.out,
            device_name=args.device,
            **named(args, "autoencoder_minutes", "base_minutes", "num_samples", "preset"),
        )
    if args.command in ("evaluate", "sweep"):
        command_line = "ul " + shlex.join(sys.argv[1:] if argv is None else argv)
        return run_evaluation_command(args, command_line)
    if args.command == "export":
        from unified_latents.commands.export import export

        return export(args.run, args.out)
    if args.command == "sample":
        from unified_latents.commands.sample import sample

        return sample(
            args.run,
            num=args.num,
            class_label=args.class_label,
            prompt=sample_prompts(args),
            overrides=sampling_overrides(args),
            decoder=args.decoder,
            seed=args.seed,
            device_name=args.device,
            out=args.out,
            first_clip=args.context,
            precision=args.precision,
        )
    raise AssertionError(f"unhandled command {args.command}")


def run_evaluation_command(args: argparse.Namespace, command_line: str) -> int:
    if args.command == "evaluate":
        from unified_latents.commands.evaluate import evaluate

        evaluate(
            args.run,
            device_name=args.device,
            fid=not args.no_fid,
            command=command_line,
            precision=args.precision,
            **named(args, "num", "inception", "decoder_steps", "base_steps", "guidance", "seed"),
            decoder_samples=args.decoder_samples,
        )
        return 0
    from unified_latents.commands.sweep import SweepOptions, sweep

    sweep_options = named(
        args,
        *("preset", "grid", "assignments", "budget_minutes", "sweep_dir", "evaluate_num"),
        *("with_base", "base_preset", "base_assignments", "base_budget_minutes", "inception"),
    )
    return sweep(SweepOptions(**sweep_options, command=command_line))


if __name__ == "__main__":
    sys.exit(main())
