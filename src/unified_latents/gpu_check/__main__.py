"""`python -m unified_latents.gpu_check` (scripts/gpu-check.sh): a ≤ 8-minute check of one CUDA
GPU. Writes OUT/gpu-check.json and prints a one-screen summary (docs/distributed.md):
(a) the `@pytest.mark.cuda` tests (tests/gpu), (b) short stage-1 and base-model training at
paper-scale widths on synthetic 512² data without and with torch.compile, (c) torchrun with
one process: a DDP step through the training loop and its checkpoint read back on the CPU.
`--cpu-smoke` takes the same path on the CPU with tiny widths, in seconds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from unified_latents.gpu_check.ddp import ddp_worker, launch_ddp
from unified_latents.gpu_check.report import run_cuda_tests, summary, system_info
from unified_latents.gpu_check.synthetic import check_configs
from unified_latents.gpu_check.throughput import measure_all

RESULT_FILE = "gpu-check.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m unified_latents.gpu_check")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny widths on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--stage1-batch", type=int, default=None, help="default 8 (smoke 2)")
    parser.add_argument("--base-batch", type=int, default=None, help="default 64 (smoke 4)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled runs")
    parser.add_argument("--compile", action="store_true", help="compiled runs in --cpu-smoke too")
    parser.add_argument("--skip-tests", action="store_true", help="skip (a)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak, if not known")
    parser.add_argument(
        "--budget-minutes", type=float, default=8.0, help="skip measurements that would start late"
    )
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ddp-batch-size", type=int, default=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.ddp_worker:
        ddp_worker(args.out, args.cpu_smoke, args.ddp_batch_size)
        return 0
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device; use --cpu-smoke to try the path", file=sys.stderr)
        return 2
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu") if smoke else torch.device("cuda", 0)
    info = system_info(device, args.peak_tflops)
    print(f"gpu_check: {info['name']}, torch {info['torch']}; writing {args.out}", flush=True)
    tests = {"ok": True, "summary": "skipped (--skip-tests)"}
    if not args.skip_tests:
        print("(a) CUDA tests ...", flush=True)
        tests = run_cuda_tests(timeout=60.0 if smoke else 240.0)
    autoencoder, base = check_configs(smoke)
    compile_modes = (False,) if args.no_compile or (smoke and not args.compile) else (False, True)
    print("(b) training throughput ...", flush=True)
    throughput = measure_all(
        autoencoder,
        base,
        batch_sizes=(
            args.stage1_batch or (2 if smoke else 8),
            args.base_batch or (4 if smoke else 64),
        ),
        device=device,
        precision=info["precision"],
        compile_modes=compile_modes,
        steps=args.steps or (2 if smoke else 10),
        warmup=args.warmup or (1 if smoke else 3),
        peak_tflops=info["bf16_peak_tflops"],
        # keep ~2.5 minutes for the torchrun part; a compilation already running is not stopped
        deadline=start + 60.0 * args.budget_minutes - 150.0,
    )
    print("(c) torchrun + DDP ...", flush=True)
    ddp = launch_ddp(args.out / "ddp", smoke, batch_size=2, timeout=120.0 if smoke else 180.0)
    path = args.out / RESULT_FILE
    record = {
        "smoke": smoke,
        "system": info,
        "tests": tests,
        "throughput": [m.record() for m in throughput],
        "ddp": ddp,
        "ok": bool(tests["ok"]) and bool(ddp.get("ok")) and not any(m.error for m in throughput),
        "seconds": time.perf_counter() - start,
        "path": str(path),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(summary(record))
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
