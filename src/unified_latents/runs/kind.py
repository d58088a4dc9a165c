"""What a run kind offers the generic commands and the Python API.

A run kind (`runs/autoencoder.py`, `runs/base_model.py`, `runs/pixel_model.py`,
`runs/end_to_end.py`) owns its config dataclass, the training task it hands to the shared loop
(`training/loop.py`), how a trained run is loaded and how `ul evaluate` measures it. The generic
commands (`ul train KIND`, `ul evaluate`, `ul sample`, `ul reconstruct`, `--dry-run`) and `ul.load`
find the kind in `runs/registry.py`, from the name stored in the run's config.json, and call these
methods instead of branching on the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Protocol, TypeVar

import torch
from torch import nn

from unified_latents.conditions import ConditionSource
from unified_latents.evaluation.network_summary import NetworkCost
from unified_latents.evaluation.run import EvaluateOptions, RunEvaluation
from unified_latents.objectives.autoencoder import Autoencoder
from unified_latents.objectives.latent_diffusion import LatentDiffusion
from unified_latents.runs.directory import RunError
from unified_latents.training.checkpoint import LoadedCheckpoint
from unified_latents.training.distributed import DistributedContext
from unified_latents.training.seeding import seeded
from unified_latents.training.task import TrainingTask


class GeneratorModels(NamedTuple):
    """What generation needs (`generation.py`): the EMA base model, the decoder side
    (`autoencoder`; the identity for pixel-space runs), the run's config (its `eval` holds the
    sampling settings) and how conditions are made."""

    base: LatentDiffusion
    autoencoder: Autoencoder
    config: Any
    conditions: ConditionSource


class AutoencoderModels(NamedTuple):
    """What reconstruction needs: the EMA stage-1 model (in eval mode), the run's config (its
    `data`, and `eval` with `decoder_steps`, `sampler`, `batch_size`) and the checkpoint read."""

    model: Autoencoder
    config: Any
    checkpoint: LoadedCheckpoint


def _same_encoder(first: Autoencoder, second: Autoencoder) -> bool:
    """Whether two autoencoders have encoders with identical weights."""
    encoders = [getattr(model, "encoder", None) for model in (first, second)]
    if not all(isinstance(encoder, nn.Module) for encoder in encoders):
        return False
    mine, theirs = (encoder.state_dict() for encoder in encoders)  # type: ignore[union-attr]
    return mine.keys() == theirs.keys() and all(
        torch.equal(mine[key].cpu(), theirs[key].cpu()) for key in mine
    )


def with_decoder(
    models: GeneratorModels, decoder: AutoencoderModels, source: Path
) -> GeneratorModels:
    """A generator's models decoding with another run's decoder (`ul sample --decoder RUN`):
    that run must encode exactly as the generator's autoencoder (same encoder weights), and
    decodes by default with its own steps and sampler."""
    if not _same_encoder(models.autoencoder, decoder.model):
        raise RunError(
            f"{source} encodes differently from this run's autoencoder (another encoder, or "
            "none), so its decoder reads another latent space: distil the decoder of the "
            "autoencoder checkpoint the base model's latents came from"
        )
    settings = decoder.config.eval
    sampling = replace(
        models.config.eval, decoder_steps=settings.decoder_steps, decoder_sampler=settings.sampler
    )
    config = replace(models.config, eval=sampling)
    return models._replace(autoencoder=decoder.model, config=config)


@dataclass(frozen=True)
class NetworkTable:
    """The `--dry-run` table: each network's parameters and forward FLOPs per image (built on the
    meta device), a note on where shapes came from, and extra fields for the JSON record."""

    costs: list[NetworkCost]
    note: str = ""
    record: dict[str, Any] = field(default_factory=dict)


class RunKind(Protocol):
    """One kind of run. `name` is what config.json stores as "kind"."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...  # one line for `ul train --help`
    @property
    def config_type(self) -> type: ...
    @property
    def presets(self) -> Mapping[str, Callable[[], Any]]: ...
    @property
    def opens_as(self) -> Literal["autoencoder", "generator"]:
        """What `ul.load` returns for such a run: an `Autoencoder` or a `Generator` (api.py)."""
        ...

    def default_run_dir(self, preset: str, config: Any) -> Path: ...

    def task(self, config: Any, context: DistributedContext, device: torch.device) -> TrainingTask:
        """The training task (built with the run's seed: same seed, same initial weights).
        Raises a user error (`RunError`, `DataError`, ...) before any run directory exists."""
        ...

    def networks(self, config: Any) -> NetworkTable: ...

    def evaluate(
        self, run_dir: Path, step: int, device: torch.device, options: EvaluateOptions
    ) -> RunEvaluation: ...

    def generator(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> GeneratorModels:
        """The models `ul sample` uses; RunError for kinds that do not generate."""
        ...

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        """The models `ul reconstruct` uses; RunError for kinds without an autoencoder."""
        ...


class SeededConfig(Protocol):
    @property
    def train(self) -> Any: ...  # a TrainConfig, whose `seed` seeds the model's initialisation


C = TypeVar("C", bound=SeededConfig)


class KindBase(Generic[C]):
    """What most kinds share: presets given by the registry, runs/<name>-<preset> as the default
    run directory, the task built under the run's seed (same seed, same initial weights), and a
    one-line error for what the kind cannot do."""

    name: ClassVar[str]
    description: ClassVar[str]
    config_type: ClassVar[type]
    opens_as: ClassVar[Literal["autoencoder", "generator"]]

    def __init__(self, presets: Mapping[str, Callable[[], C]]) -> None:
        self.presets = presets

    def default_run_dir(self, preset: str, config: C) -> Path:
        return Path("runs") / f"{self.name}-{preset}"

    def task(self, config: C, context: DistributedContext, device: torch.device) -> TrainingTask:
        with seeded(config.train.seed):
            return self.build_task(config, context, device)

    def build_task(
        self, config: C, context: DistributedContext, device: torch.device
    ) -> TrainingTask:
        raise NotImplementedError

    def generator(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> GeneratorModels:
        raise RunError(f"sampling needs a run that generates; {run_dir} is a {self.name} run")

    def autoencoder(
        self, run_dir: Path, device: torch.device, step: int | None = None
    ) -> AutoencoderModels:
        raise RunError(
            f"reconstruction needs an autoencoder or end-to-end run; {run_dir} is a {self.name} run"
        )
