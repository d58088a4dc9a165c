"""The evaluation phase of `flops_curve.py`: a list of measurements, each written to its own JSON
under WORK/evals, done in dependency order and skipped once written.

1. decoder   UL arms' reconstructions, rFID@1000 for each (decoder steps, decoder input) in
             `DECODER_GRID`; the pair with the lowest mean rFID over the UL arms (ties within 2%
             go to fewer steps) is used by every later UL measurement. Skipped when the plan
             gives the decoding (`--decoder 32,clean`: chosen so by an earlier run).
2. recon     every latent arm at N: rFID@N, PSNR (one sample; UL also the mean of 8), bits.
3. guidance  every checkpoint on the curve at each `GUIDANCE_GRID` value on the validation seed
             (N = `VALIDATION_NUM`); the lowest FD_cls (Fréchet distance in the shipped
             Fashion-MNIST classifier's features, no Inception: a validation point costs its
             sampling only) picks that checkpoint's guidance. For ul-lf3.0 also gFID@N_val with
             both decoder inputs at the largest budget, so generation is checked both ways.
4. curve     that checkpoint's gFID@N etc. with sampling seed 0, and seed 1 plus a bootstrap
             interval at the largest budget.

Each checkpoint is measured as soon as it exists (largest budget first; the second seeds
after every first-seed point), so figures can be committed while the base models still train.

Several evaluators may run at once: each measurement is claimed with an exclusive file holding
the PID (claims of dead processes are taken over).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from _curve_measure import Reference, generation, reconstruction
from _tables_jobs import say
from _tables_plan import read_json as read
from flops_curve import Arm, Plan, newest_step
from unified_latents.metrics.inception import InceptionFeatures
from unified_latents.runs.directory import checkpoint_dir
from unified_latents.visualize import save_image_grid

DECODER_GRID = (
    (4, "noisy"),
    (8, "noisy"),
    (16, "noisy"),
    (32, "noisy"),
    (8, "clean"),
    (32, "clean"),
)
DECODER_SELECTION_NUM = 1000
GUIDANCE_GRID = (1.0, 2.0, 3.0)
VALIDATION_NUM, VALIDATION_SEED = 250, 1000
BASE_SAMPLING_STEPS = 32
CURVE_SEEDS, TOP_EXTRA_SEEDS, BOOTSTRAP = (0,), (1,), 50


def write(path: Path, record: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def claim(path: Path) -> bool:
    """Take the measurement at `path` for this process; False if a live process holds it."""
    lock = path.with_suffix(".claim")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or "0"), 0)
                return False
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)  # its process is gone: take it over
                continue
            except PermissionError:
                return False
        os.write(descriptor, str(os.getpid()).encode())
        os.close(descriptor)
        return True
    return False


@dataclass
class Item:
    path: Path
    ready: Callable[[], bool]
    run: Callable[[], dict[str, Any]]


class Evaluation:
    def __init__(self, plan: Plan, arms: list[Arm], num: int) -> None:
        self.plan, self.arms, self.num = plan, arms, num
        self.root = plan.work_dir / "evals"
        self._reference: Reference | None = None

    @property
    def reference(self) -> Reference:
        if self._reference is None:
            self._reference = Reference(InceptionFeatures(None, "cpu"))
        return self._reference

    # ------------------------------------------------------------ paths and choices
    def ul_arms(self) -> list[Arm]:
        return [arm for arm in self.arms if arm.latent_space == "ul"]

    def decoder_path(self, arm: Arm, steps: int, source: str) -> Path:
        return self.root / "decoder" / self.plan.stage1_dir(arm).name / f"{steps}-{source}.json"

    def decoder_choice(self) -> tuple[int, str] | None:
        """(decoder steps, input) for UL arms: the plan's, if it gives one; else the grid's best,
        once every grid point of every UL arm exists."""
        if self.plan.decoder:
            given_steps, given_input = self.plan.decoder.split(",")
            return int(given_steps), given_input
        arms = {self.plan.stage1_dir(arm).name: arm for arm in self.ul_arms()}
        scores = []
        for steps, source in DECODER_GRID:
            records = [read(self.decoder_path(arm, steps, source)) for arm in arms.values()]
            if any(record is None for record in records):
                return None
            mean = sum(record["rfid"] for record in records if record) / len(records)
            scores.append((mean, steps, source))
        best = min(score for score, _, _ in scores)
        steps, source = min((s, src) for score, s, src in scores if score <= 1.02 * best)
        return steps, source

    def decoding(self, arm: Arm) -> tuple[int, str] | None:
        if arm.latent_space != "ul":
            return (1, "clean")  # deterministic decoders (KL-VAE) and pixels: nothing to pick
        return self.decoder_choice()

    def guidance_path(self, arm: Arm, step: int, guidance: float) -> Path:
        return self.root / "guidance" / arm.name / f"step{step:06d}-g{guidance:g}.json"

    def guidance_choice(self, arm: Arm, step: int) -> float | None:
        records = [read(self.guidance_path(arm, step, g)) for g in GUIDANCE_GRID]
        if any(record is None for record in records):
            return None
        return min((record["fd_cls"], record["guidance"]) for record in records if record)[1]

    def curve_path(self, arm: Arm, step: int, seed: int) -> Path:
        return self.root / "curve" / arm.name / f"step{step:06d}-seed{seed}.json"

    def checkpoint_ready(self, arm: Arm, step: int) -> bool:
        return checkpoint_dir(self.plan.base_dir(arm), step).is_dir()

    def stage1_done(self, arm: Arm) -> bool:
        return newest_step(self.plan.stage1_dir(arm)) >= self.plan.stage1_target(arm)

    def recon_ready(self, arm: Arm) -> bool:
        return self.stage1_done(arm) and self.decoding(arm) is not None

    def guidance_ready(self, arm: Arm, step: int) -> bool:
        return self.checkpoint_ready(arm, step) and self.decoding(arm) is not None

    def curve_ready(self, arm: Arm, step: int) -> bool:
        return self.guidance_choice(arm, step) is not None

    # ------------------------------------------------------------ measurements
    def items(self) -> list[Item]:
        """Every measurement, in the order they should run (module docstring)."""
        top, items, extra = self.plan.base_steps, {}, []

        def add(path: Path, ready: Callable[[], bool], run: Callable[[], dict[str, Any]]) -> None:
            items.setdefault(path, Item(path, ready, run))  # arms may share a stage-1 run

        for arm in self.ul_arms() if not self.plan.decoder else []:
            for steps, source in DECODER_GRID:
                run = self.recon(arm, DECODER_SELECTION_NUM, steps, source)
                add(self.decoder_path(arm, steps, source), partial(self.stage1_done, arm), run)
        for arm in (arm for arm in self.arms if arm.stage1):
            path = self.root / "recon" / f"{self.plan.stage1_dir(arm).name}.json"
            add(path, partial(self.recon_ready, arm), self.recon(arm, self.num, psnr_samples=8))
        every_step = {step for arm in self.arms for step in self.plan.budgets(arm)}
        for step in sorted(every_step, reverse=True):
            for arm in (arm for arm in self.arms if step in self.plan.budgets(arm)):
                for guidance in GUIDANCE_GRID:  # chosen on FD_cls: no Inception
                    run = self.generate(
                        arm, step, VALIDATION_SEED, VALIDATION_NUM, guidance, inception=False
                    )
                    path = self.guidance_path(arm, step, guidance)
                    add(path, partial(self.guidance_ready, arm, step), run)
                for seed in CURVE_SEEDS + (TOP_EXTRA_SEEDS if step == top else ()):
                    run = self.generate(
                        arm, step, seed, self.num, bootstrap=BOOTSTRAP * (step == top)
                    )
                    path = self.curve_path(arm, step, seed)
                    if seed in CURVE_SEEDS:
                        add(path, partial(self.curve_ready, arm, step), run)
                    else:  # the second seeds after every first-seed point
                        extra.append(Item(path, partial(self.curve_ready, arm, step), run))
                if arm.name == "ul-lf3.0" and step == top:  # gFID with both decoder inputs, once
                    for source in ("clean", "noisy"):
                        run = self.generate(
                            arm, top, VALIDATION_SEED, VALIDATION_NUM, decoder_input=source
                        )
                        path = self.root / "decoder-input" / arm.name / f"{source}.json"
                        add(path, partial(self.curve_ready, arm, top), run)
        return [*items.values(), *extra]

    def recon(
        self,
        arm: Arm,
        num: int,
        steps: int | None = None,
        source: str | None = None,
        psnr_samples: int = 0,
    ) -> Callable[[], dict[str, Any]]:
        """Reconstruction measurement; steps/source None: the chosen decoding."""

        def run() -> dict[str, Any]:
            decoding = (steps, source) if steps is not None else self.decoding(arm)
            assert decoding is not None
            return reconstruction(
                self.plan.stage1_dir(arm),
                self.reference,
                num=num,
                steps=decoding[0],
                decoder_input=decoding[1],
                seed=0,
                psnr_samples=psnr_samples,
            )  # type: ignore[arg-type]

        return run

    def generate(
        self,
        arm: Arm,
        step: int,
        seed: int,
        num: int,
        guidance: float | None = None,
        *,
        decoder_input: str | None = None,
        bootstrap: int = 0,
        inception: bool = True,
    ) -> Callable[[], dict[str, Any]]:
        """Generation measurement; guidance None: the one chosen for this checkpoint;
        decoder_input None: the chosen decoding's."""

        def run() -> dict[str, Any]:
            decoding = self.decoding(arm)
            chosen = self.guidance_choice(arm, step) if guidance is None else guidance
            assert decoding is not None and chosen is not None
            steps, source = decoding
            source = decoder_input or source
            record, samples = generation(
                self.plan.base_dir(arm),
                step,
                self.reference,
                num=num,
                seed=seed,
                guidance=chosen,
                base_steps=BASE_SAMPLING_STEPS,
                decoder_steps=steps,
                decoder_input=source,
                bootstrap=bootstrap,
                inception=inception,
            )  # type: ignore[arg-type]
            name = f"step{step:06d}-seed{seed}-g{chosen:g}-{source}.png"
            grid = self.root / "grids" / arm.name / name
            save_image_grid(samples[:100], grid, 10, scale=2)
            return {**record, "grid": str(grid)}

        return run


def evaluate_all(plan: Plan, arms: list[Arm], *, num: int, wait_seconds: float = 120.0) -> None:
    """Run every ready measurement not yet written; wait for trainings (or another evaluator)
    while some are not ready; return when all are written."""
    evaluation = Evaluation(plan, arms, num)
    evaluation.reference  # noqa: B018 -- the test-split features first: every measurement needs them
    while True:
        pending = [item for item in evaluation.items() if read(item.path) is None]
        if not pending:
            say("every measurement is written")
            return
        ran = False
        for item in pending:
            if read(item.path) is not None or not item.ready() or not claim(item.path):
                continue
            name = item.path.relative_to(evaluation.root)
            say(f"▶ {name}")
            start = time.monotonic()
            try:
                record = item.run()
                record["seconds"] = time.monotonic() - start
                write(item.path, record)
                say(f"✓ {name} ({record['seconds'] / 60:.1f} min)")
            finally:
                item.path.with_suffix(".claim").unlink(missing_ok=True)
            ran = True
            break  # re-read the list: a choice may have become known
        if not ran:
            say(f"{len(pending)} measurements wait for trainings or another evaluator")
            time.sleep(wait_seconds)
