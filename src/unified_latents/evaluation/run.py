"""What evaluating one run yields, and the options every run kind's evaluation takes (`ul evaluate`
looks the kind up and calls its `evaluate`; `commands/evaluate.py` writes the outcome)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from torch import Tensor

from unified_latents.conditions import ConditionSource
from unified_latents.evaluation.compute import TrainingCost
from unified_latents.evaluation.fid import Evaluation
from unified_latents.generation import SamplingConfig, SamplingSettings, evaluation_conditions
from unified_latents.metrics.inception import InceptionFeatures


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    num: int  # N: reconstructions / samples (and the N of FID@N)
    decoder_steps: int | None  # None: the run's eval setting
    base_steps: int | None
    guidance: float | None
    seed: int
    extractor: InceptionFeatures | None  # None: no FID/KID
    cache_dir: Path | None  # reference statistics (None: $UL_CACHE_DIR or ~/.cache)
    progress: bool
    precision: str = "fp32"  # of the networks while sampling: fp32, bf16 or auto (native bf16)
    decoder_samples: int | None = None  # None: the run's eval setting (mean of K decoder samples)


class RunEvaluation(NamedTuple):
    evaluation: Evaluation
    settings: dict[str, Any]  # how it was measured, for eval.json and the report
    costs: list[TrainingCost]  # training compute behind the evaluated model


def run_cost(
    part: str, run_dir: Path, step: int, batch_size: int, flops_per_image: float
) -> TrainingCost:
    """Training compute of `run_dir` up to optimizer step `step` (the evaluated checkpoint)."""
    return TrainingCost(
        part=part,
        run_dir=str(run_dir),
        step=step,
        batch_size=batch_size,
        flops_per_image=flops_per_image,
    )


def sampling_overrides(options: EvaluateOptions) -> dict[str, Any]:
    overrides = {
        "base_steps": options.base_steps,
        "decoder_steps": options.decoder_steps,
        "guidance": options.guidance,
        "decoder_samples": options.decoder_samples,
    }
    return {name: value for name, value in overrides.items() if value is not None}


def sampling_description(
    settings: SamplingSettings, conditions: ConditionSource, drawn: str, dataset: str
) -> dict[str, object]:
    """How the evaluated samples were drawn, for eval.json (base and end-to-end runs)."""
    return {
        "base_steps": settings.base_steps,
        "decoder_steps": settings.decoder_steps,
        "decoder_samples": settings.decoder_samples,
        "sampler": settings.sampler,
        "guidance": settings.guidance,
        "guidance_interval": settings.guidance_interval,
        "condition": conditions.kind,
        "classes": drawn,
        "dataset": dataset,
    }


Settings = TypeVar("Settings", bound=SamplingSettings, covariant=True)
Config = TypeVar("Config", bound=SamplingConfig)


@dataclass(frozen=True)
class SamplingRequest(Generic[Settings]):
    """What a generating run's evaluation draws: its eval settings with the command's overrides,
    the conditions and class labels of the N samples, and how they were drawn, for eval.json."""

    settings: Settings
    cond: Tensor | None
    labels: Tensor
    description: dict[str, object]


def sampling_request(
    eval_config: Config, conditions: ConditionSource, options: EvaluateOptions, dataset: str
) -> SamplingRequest[Config]:
    """The samples `ul evaluate` draws from a base-model, pixel or end-to-end run."""
    settings = replace(eval_config, **sampling_overrides(options))
    cond, labels, drawn = evaluation_conditions(conditions, options.num)
    description = sampling_description(settings, conditions, drawn, dataset)
    return SamplingRequest(settings, cond, labels, description)
