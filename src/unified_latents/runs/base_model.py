"""The base-model run kind (stage 2, UL-SPEC §8): a diffusion model on the cached latents of a
frozen autoencoder run, class-, text- or un-conditioned; its config, training task, loading and
evaluation (`runs/kind.py`). `GeneratorTask` is the part it shares with the pixel-space baseline
(`runs/pixel_model.py`).

Held-out evaluation reports the base model's unweighted ELBO in bits (the paper's "latent bpd,
base model") next to the stage-1 prior's bound on the same latents, and writes a sample grid
(base model → ẑ → decoder → image) with the configured guidance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from unified_latents.conditions import (
    Captions,
    ConditionSource,
    check_class_count,
    dataset_captions,
)
from unified_latents.config import check_at_least, from_dict
from unified_latents.data.latent_cache import Keys, LatentCache, LatentStream
from unified_latents.evaluation.base_model import HeldOut
from unified_latents.evaluation.compute import TrainingCost, stage1_forward_flops
from unified_latents.evaluation.network_summary import base_costs, latent_shape
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation, run_cost
from unified_latents.generation import SamplingConfig
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import BaseModelConfig, LatentDiffusion
from unified_latents.runs.autoencoder import KIND as AUTOENCODER
from unified_latents.runs.autoencoder import (
    AutoencoderRunConfig,
    KindOnAutoencoder,
    build_autoencoder,
    load_autoencoder,
)
from unified_latents.runs.directory import (
    RunError,
    latest_training_state,
    load_run,
    read_run_record,
)
from unified_latents.runs.generator_task import GeneratorTask, evaluate_generator
from unified_latents.runs.kind import AutoencoderModels, GeneratorModels, NetworkTable
from unified_latents.runs.latents import (
    autoencoder_dir,
    encoded_from_step,
    ensure_encoded,
    latent_cache_dir,
    latent_class_names,
)
from unified_latents.training.config import TrainConfig
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.optim import OptimConfig
from unified_latents.training.seeding import seeded
from unified_latents.training.task import BatchSource

KIND = "base"


@dataclass(frozen=True, kw_only=True)
class BaseEvalConfig(SamplingConfig):
    num_latents: int = 1000  # held-out latents for the ELBO estimates
    elbo_passes: int = 2  # noise levels per latent

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least(self, 1, "num_latents", "elbo_passes")


@dataclass(frozen=True, kw_only=True)
class BaseRunConfig:
    autoencoder_run: str = ""  # the stage-1 run directory (frozen encoder/decoder, λ_0)
    model: BaseModelConfig = field(default_factory=BaseModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: BaseEvalConfig = field(default_factory=BaseEvalConfig)


def build_base_model(model: BaseModelConfig, autoencoder: Autoencoder) -> LatentDiffusion:
    """λ_max is the autoencoder's λ_0 (from its checkpoint), never a base-model setting."""
    return LatentDiffusion(
        model,
        autoencoder.latent_shape,
        autoencoder.latent_logsnr_max,
        noise_in_latent_units=autoencoder.noisy_latents,
    )


class BaseTask(GeneratorTask):
    """Stage 2 on the latent cache of `cache_dir` (`runs/latents.py`)."""

    def __init__(
        self,
        config: BaseRunConfig,
        autoencoder: Autoencoder,
        cache_dir: Path,
        device: torch.device,
        captions: tuple[Captions, Captions] | None = None,
    ) -> None:
        """`captions`: the captions of the encoded train and test splits ("text-tokens"
        conditioning); cached latents look theirs up by dataset index (data/latent_cache.py)."""
        self.config = config
        self.train_cache = LatentCache(cache_dir / "train")
        class_names = list(self.train_cache.info.get("class_names", []))
        check_class_count(config.model.condition, class_names)
        conditions = ConditionSource(config.model.condition, class_names, *(captions or ()))
        self.keys: Keys = "indices" if conditions.keyed_by_index else "labels"
        if conditions.keyed_by_index:
            conditions.require_captions()
        latents, keys = LatentCache(cache_dir / "test").first(config.eval.num_latents, self.keys)
        model = build_base_model(config.model, autoencoder)
        if model.normalized:  # from the EMA encoder's cached latents (resume restores them)
            statistics = self.train_cache.statistics()
            model.set_latent_statistics(statistics.mean, statistics.std)
        heldout = HeldOut(latents, keys, "cached test latents")
        super().__init__(config.eval, model, autoencoder, conditions, heldout, device)

    def batches(self, micro_batch_size: int, seed: int, rank: int, world_size: int) -> BatchSource:
        return LatentStream(
            self.train_cache, micro_batch_size, seed, rank, world_size, keys=self.keys
        )


def _stage1_cost(ae_dir: Path, autoencoder: Autoencoder) -> TrainingCost:
    """Stage 1 up to the checkpoint the base model's latents were encoded from (named in the
    latent cache's source.json), else up to the newest stage-1 checkpoint."""
    step = encoded_from_step(ae_dir)
    if step is None:
        newest = latest_training_state(ae_dir)
        step = int(newest[1]["step"]) if newest else 0
    ae_config, _ = load_run(ae_dir, AUTOENCODER, AutoencoderRunConfig)
    per_image = 3.0 * stage1_forward_flops(autoencoder)
    return run_cost("stage1", ae_dir, step, ae_config.train.batch_size, per_image)


def _autoencoder_run(config: BaseRunConfig) -> Path:
    if not config.autoencoder_run:
        raise RunError(
            "a base model needs its autoencoder run: --autoencoder AE_RUN_DIR (or --set "
            "autoencoder_run=AE_RUN_DIR); pixel-space diffusion is `ul train pixel`"
        )
    return Path(config.autoencoder_run)


class BaseModelKind(KindOnAutoencoder[BaseRunConfig]):
    """Stage 2: `ul train base --set autoencoder_run=AE_RUN` (alias `ul train-base --autoencoder
    AE_RUN`); the dataset is encoded into the autoencoder run's latent cache first if needed."""

    name = KIND
    description = "stage 2: a base model on the frozen latents of an autoencoder run"
    config_type = BaseRunConfig
    opens_as = "generator"

    def task(
        self, config: BaseRunConfig, context: DistributedContext, device: torch.device
    ) -> BaseTask:
        ae_dir = _autoencoder_run(config)
        cache = ensure_encoded(ae_dir, config.train.device, context)
        autoencoder, ae_config, _ = load_autoencoder(ae_dir, device)
        captions = None
        if config.model.condition.kind == "text-tokens":  # looked up by the latents' index
            captions = dataset_captions(ae_config.data)
        with seeded(config.train.seed):
            return BaseTask(config, autoencoder, cache, device, captions)

    def networks(self, config: BaseRunConfig) -> NetworkTable:
        """On the latent of the autoencoder run (its stored config), or, in a dry run before
        any training, of the autoencoder preset that --autoencoder names."""
        source = str(_autoencoder_run(config))
        try:
            record = read_run_record(Path(source))
        except (RunError, OSError, ValueError):
            record = None
        if record is not None and record.get("kind") == AUTOENCODER:
            stage1 = from_dict(AutoencoderRunConfig, record["run"])
            note = f"latent of the autoencoder run {source}"
        elif source in self.autoencoder_presets:
            stage1 = self.autoencoder_presets[source]()
            note = f"latent of preset {source!r}"
        else:
            return NetworkTable(
                [],
                f"no network table: {source} is neither an autoencoder run "
                "nor an autoencoder preset (a dry run accepts --autoencoder PRESET)",
            )
        shape = latent_shape(lambda: build_autoencoder(stage1))
        costs = base_costs(config.model, shape)
        return NetworkTable(costs, note, {"input_shape": list(shape)})

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation:
        models = self.generator(run_dir, device, step)
        ae_dir = autoencoder_dir(run_dir, models.config.autoencoder_run)
        ae_config, _ = load_run(ae_dir, AUTOENCODER, AutoencoderRunConfig)
        keys: Keys = "indices" if models.conditions.keyed_by_index else "labels"
        cache = LatentCache(latent_cache_dir(ae_dir) / "test")
        latents, labels = cache.first(models.config.eval.num_latents, keys)
        return evaluate_generator(
            models,
            ae_config.data,
            HeldOut(latents, labels, "cached test latents"),
            options,
            run_dir=run_dir,
            step=step,
            autoencoder_run=models.config.autoencoder_run,
            costs=[_stage1_cost(ae_dir, models.autoencoder)],
        )

    def generator(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> GeneratorModels:
        """The EMA base model of a run (newest checkpoint, or that of `step`), the autoencoder
        checkpoint its latents were encoded with, its config and condition source."""
        config, loaded = load_run(run_dir, KIND, BaseRunConfig, step)
        ae_dir = autoencoder_dir(run_dir, config.autoencoder_run)
        autoencoder = load_autoencoder(ae_dir, device, encoded_from_step(ae_dir)).model
        base = build_base_model(config.model, autoencoder)
        base.load_state_dict(loaded.ema)
        conditions = ConditionSource(config.model.condition, latent_class_names(ae_dir, run_dir))
        return GeneratorModels(base.to(device).eval(), autoencoder, config, conditions)

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        """The autoencoder checkpoint the run's latents were encoded with."""
        config, _ = load_run(run_dir, KIND, BaseRunConfig, step)
        ae_dir = autoencoder_dir(run_dir, config.autoencoder_run)
        return load_autoencoder(ae_dir, device, encoded_from_step(ae_dir))
