"""The decoder-distillation run kind (issue 19): a few-step decoder for a trained UL autoencoder
run by progressive distillation (`objectives/decoder_distillation.py`, Salimans & Ho 2022); its
config, training task, loading and evaluation (`runs/kind.py`).

    ul distill-decoder --run AE_RUN --steps 4
    = ul train decoder-distillation --set teacher_run=AE_RUN --set target_steps=4

The student starts as the teacher run's EMA decoder and trains for `initial_steps` DDIM steps
against the teacher at twice that, then halves its steps every `steps_per_phase` optimizer steps
until `target_steps` (the last phase runs on until `train.max_steps`). Such a run opens as an
autoencoder: `ul reconstruct`, `ul evaluate` and `ul.load` use the teacher's encoder and prior
with the student decoder, at the step count of the checkpoint's phase; `ul sample --decoder RUN`
(and `ul.load(BASE, decoder=RUN)`, `runs/kind.py: with_decoder`) decode a base model's latents
with it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from unified_latents.config import check_at_least, from_dict
from unified_latents.data.datasets import heldout_images, load_split, to_model_range
from unified_latents.data.stream import ImageBatches
from unified_latents.evaluation.autoencoder import evaluate_autoencoder
from unified_latents.evaluation.compute import call_flops, stage1_forward_flops
from unified_latents.evaluation.network_summary import autoencoder_costs
from unified_latents.evaluation.reconstruction import reconstruction_statistics
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation, run_cost
from unified_latents.objectives.decoder_distillation import (
    DecoderDistillation,
    DistilledDecoder,
    phase_steps,
    student_steps_at,
)
from unified_latents.objectives.terms import LossTerms
from unified_latents.objectives.unified_latents import UnifiedLatents
from unified_latents.runs.autoencoder import KIND as AUTOENCODER
from unified_latents.runs.autoencoder import (
    AutoencoderRunConfig,
    KindOnAutoencoder,
    build_autoencoder,
    load_autoencoder,
)
from unified_latents.runs.directory import RunError, load_run, read_run_record
from unified_latents.runs.kind import AutoencoderModels, NetworkTable
from unified_latents.runs.latents import autoencoder_dir
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.optim import OptimConfig
from unified_latents.visualize import interleave, save_image_grid

KIND = "decoder-distillation"


@dataclass(frozen=True, kw_only=True)
class DistillationEvalConfig:
    num_images: int = 256  # `ul evaluate`: held-out images for the rate (the teacher's prior)
    rate_passes: int = 1
    num_reconstructions: int = 64  # decoded with the student during training
    batch_size: int = 128
    seed: int = 1234

    def __post_init__(self) -> None:
        names = ("num_images", "rate_passes", "num_reconstructions", "batch_size")
        check_at_least(self, 1, *names)


@dataclass(frozen=True, kw_only=True)
class DecoderDistillationRunConfig:
    teacher_run: str = ""  # the autoencoder run whose decoder is distilled
    teacher_step: int = 0  # its checkpoint (0: the newest when the distillation starts)
    initial_steps: int = 16  # the first student's steps; its teacher samples with twice as many
    target_steps: int = 4  # halved phase by phase down to this
    steps_per_phase: int = 500  # optimizer steps per phase (the last runs to train.max_steps)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: DistillationEvalConfig = field(default_factory=DistillationEvalConfig)

    def __post_init__(self) -> None:
        check_at_least(self, 1, "initial_steps", "target_steps", "steps_per_phase")
        check_at_least(self, 0, "teacher_step")

    def check_fields(self) -> None:
        self.phases()

    def phases(self) -> tuple[int, ...]:
        """The student's steps in each phase, e.g. (16, 8, 4)."""
        return phase_steps(self.initial_steps, self.target_steps)


def _teacher_dir(config: DecoderDistillationRunConfig, run_dir: Path | None = None) -> Path:
    if not config.teacher_run:
        raise RunError(
            "a decoder distillation needs its teacher: ul distill-decoder --run AE_RUN (or --set "
            "teacher_run=AE_RUN)"
        )
    return autoencoder_dir(run_dir, config.teacher_run) if run_dir else Path(config.teacher_run)


def check_teacher(model: Any, ae_config: AutoencoderRunConfig, source: str) -> UnifiedLatents:
    """`model` if it is a UL autoencoder with a diffusion decoder (what can be distilled)."""
    if not isinstance(model, UnifiedLatents) or model.deterministic_decoder:
        raise RunError(
            f"{source} is a {ae_config.objective.kind} autoencoder: only diffusion decoders "
            "(objective.kind ul, ul-normal-prior, ul-stopgrad-prior) can be distilled"
        )
    return model


def teacher_config(teacher_dir: Path) -> AutoencoderRunConfig:
    record = read_run_record(teacher_dir)
    if record["kind"] != AUTOENCODER:
        raise RunError(f"the teacher {teacher_dir} is a {record['kind']} run, not an autoencoder")
    return from_dict(AutoencoderRunConfig, record["run"])


class DistillationTask(ImageBatches):
    """Progressive distillation for the shared loop; the phase follows from `step`."""

    plots: ClassVar[dict[str, tuple[str, ...]]] = {
        "loss": ("loss",),
        "target_mse": ("target_mse",),
        "psnr": ("psnr_db",),
        "student_steps": ("student_steps",),
    }
    progress_keys = ("loss", "student_steps", "psnr_db")

    def __init__(self, config: DecoderDistillationRunConfig, teacher: AutoencoderModels) -> None:
        self.config, self.phases = config, config.phases()
        assert isinstance(teacher.model, UnifiedLatents)
        step = int(teacher.checkpoint.state["step"])
        self.model = DecoderDistillation(teacher.model, config.initial_steps, step)
        data = teacher.config.data
        self.train_data = load_split(data, "train", training=True)
        self.num_workers = data.num_workers
        self.test_images, _ = heldout_images(
            load_split(data, "test"), config.eval.num_reconstructions
        )
        self.loss_normalizer = float(data.channels * data.image_size**2)

    def loss(
        self, module: nn.Module, batch: Any, generator: torch.Generator, step: int
    ) -> LossTerms:
        self.model.start_phase(student_steps_at(step, self.phases, self.config.steps_per_phase))
        images, _ = batch
        return module(to_model_range(images).to(generator.device, non_blocking=True), generator)

    def summarize(self, means: Mapping[str, float]) -> dict[str, float]:
        return dict(means)

    def evaluate(self, ema: nn.Module, step: int, run_dir: Path) -> dict[str, float]:
        """PSNR/SSIM of the EMA student's reconstructions at its current step count."""
        assert isinstance(ema, DecoderDistillation)
        start = time.perf_counter()
        model, settings = ema.distilled(), self.config.eval
        stats, reconstructions = reconstruction_statistics(
            model,
            self.test_images,
            num_steps=model.steps,
            sampler="ddim",
            batch_size=settings.batch_size,
            seed=settings.seed,
        )
        grid = interleave(self.test_images[:32], reconstructions[:32])
        save_image_grid(grid, run_dir / "reconstructions" / f"step_{step:08d}.png", 8, scale=2)
        elapsed = time.perf_counter() - start
        return {**stats, "student_steps": float(model.steps), "eval_seconds": elapsed}


class Distilled(NamedTuple):
    config: DecoderDistillationRunConfig
    teacher_dir: Path
    state: DecoderDistillation  # the EMA weights of the whole run (teacher, student, ...)
    models: AutoencoderModels  # the teacher's encoder and prior with the student decoder


def load_distilled(run_dir: Path, device: torch.device, step: int | None = None) -> Distilled:
    """A run's checkpoint (newest, or of `step`): its EMA state, and as `AutoencoderModels` the
    teacher's encoder and prior with the student decoder (eval mode, on `device`) and the
    teacher's config whose `eval` decodes with the student: its step count, DDIM."""
    config, loaded = load_run(run_dir, KIND, DecoderDistillationRunConfig, step)
    teacher_dir = _teacher_dir(config, run_dir)
    ae_config = teacher_config(teacher_dir)
    teacher = check_teacher(build_autoencoder(ae_config), ae_config, str(teacher_dir))
    state = DecoderDistillation(teacher, config.initial_steps)
    state.load_state_dict(loaded.ema)
    model = state.to(device).distilled().eval()
    settings = replace(
        ae_config.eval,
        decoder_steps=model.steps,
        sampler="ddim",
        batch_size=config.eval.batch_size,
        num_images=config.eval.num_images,
        rate_passes=config.eval.rate_passes,
    )
    models = AutoencoderModels(model, replace(ae_config, eval=settings), loaded)
    return Distilled(config, teacher_dir, state, models)


class DecoderDistillationKind(KindOnAutoencoder[DecoderDistillationRunConfig]):
    """`ul train decoder-distillation --set teacher_run=AE_RUN` (alias `ul distill-decoder`)."""

    name = KIND
    description = "a few-step decoder for an autoencoder run, by progressive distillation"
    config_type = DecoderDistillationRunConfig
    opens_as = "autoencoder"

    def default_run_dir(self, preset: str, config: DecoderDistillationRunConfig) -> Path:
        teacher = Path(config.teacher_run).name or preset
        return Path("runs") / f"{teacher}-distilled-{config.target_steps}steps"

    def task(
        self,
        config: DecoderDistillationRunConfig,
        context: DistributedContext,
        device: torch.device,
    ) -> DistillationTask:
        teacher_dir = _teacher_dir(config)
        teacher_config(teacher_dir)  # an autoencoder run?
        teacher = load_autoencoder(teacher_dir, device, config.teacher_step or None)
        check_teacher(teacher.model, teacher.config, str(teacher_dir))
        return DistillationTask(config, teacher)  # copies of trained weights: no seed needed

    def networks(self, config: DecoderDistillationRunConfig) -> NetworkTable:
        """The teacher's networks (from its run, or an autoencoder preset in a dry run) and the
        student, a copy of its decoder."""
        source = _teacher_dir(config)
        if str(source) in self.autoencoder_presets and not source.is_dir():
            ae_config, note = self.autoencoder_presets[str(source)](), f"preset {str(source)!r}"
        else:
            ae_config, note = teacher_config(source), f"the autoencoder run {source}"
        costs = autoencoder_costs(lambda: build_autoencoder(ae_config))
        student = replace(costs[-1], name="student")
        record = {"phases": list(config.phases())}
        return NetworkTable([*costs, student], f"teacher: {note}", record)

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation:
        run_config, teacher_dir, state, (model, config, _) = load_distilled(run_dir, device, step)
        assert isinstance(model, DistilledDecoder)
        steps = options.decoder_steps or model.steps
        evaluation = evaluate_autoencoder(
            model, config.data, config.eval, decoder_steps=steps, sampler="ddim", options=options
        )
        teacher_step = int(state.teacher_checkpoint_step)
        settings = {
            "decoder_steps": steps,
            "student_steps": model.steps,
            "sampler": "ddim (distilled student)",
            "teacher_run": str(teacher_dir),
            "teacher_step": teacher_step,
            "dataset": config.data.name,
        }
        # Distillation: encoder + 2 teacher evaluations + student forward and backward.
        x = torch.zeros(1, *model.image_shape, device=device)
        distill = call_flops(lambda: state(x))
        decoder = evaluation.flops["decoder_forward_per_image"]
        per_image = distill + 2.0 * decoder
        stage1 = 3.0 * stage1_forward_flops(model)
        costs = [
            run_cost("stage1", teacher_dir, teacher_step, config.train.batch_size, stage1),
            run_cost("distillation", run_dir, step, run_config.train.batch_size, per_image),
        ]
        return RunEvaluation(evaluation, settings, costs)

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        return load_distilled(run_dir, device, step).models
