"""The run kinds by name: what the generic commands and `ul.load` look a run's kind up in.

    autoencoder   stage 1 (runs/autoencoder.py)
    base          stage 2, a base model on an autoencoder run's latents (runs/base_model.py)
    pixel         the pixel-diffusion baseline (runs/pixel_model.py)
    end-to-end    single-stage UL (runs/end_to_end.py)
    decoder-distillation   a few-step decoder for an autoencoder run (runs/decoder_distillation.py)

A new kind (text-to-image, video, ...) is one module implementing `runs/kind.py: RunKind`, its
presets, and one line here.
"""

from __future__ import annotations

from pathlib import Path

from unified_latents.runs.autoencoder import AutoencoderKind
from unified_latents.runs.base_model import BaseModelKind
from unified_latents.runs.decoder_distillation import DecoderDistillationKind
from unified_latents.runs.directory import RunError, read_run_record
from unified_latents.runs.end_to_end import EndToEndKind
from unified_latents.runs.kind import RunKind
from unified_latents.runs.pixel_model import PixelModelKind
from unified_latents.runs.presets import (
    AUTOENCODER_PRESETS,
    BASE_PRESETS,
    END_TO_END_PRESETS,
    PIXEL_PRESETS,
)
from unified_latents.runs.presets_distillation import DECODER_DISTILLATION_PRESETS

KINDS: dict[str, RunKind] = {
    kind.name: kind
    for kind in (
        AutoencoderKind(AUTOENCODER_PRESETS),
        BaseModelKind(BASE_PRESETS, AUTOENCODER_PRESETS),
        PixelModelKind(PIXEL_PRESETS),
        EndToEndKind(END_TO_END_PRESETS),
        DecoderDistillationKind(DECODER_DISTILLATION_PRESETS, AUTOENCODER_PRESETS),
    )
}


def run_kind(name: str) -> RunKind:
    """The kind called `name`, or a RunError listing the kinds."""
    if name not in KINDS:
        raise RunError(f"unknown run kind {name!r}; choose one of {', '.join(KINDS)}")
    return KINDS[name]


def kind_of(run_dir: Path) -> RunKind:
    """The kind of the run in `run_dir`, from its config.json (or newest checkpoint)."""
    return run_kind(read_run_record(run_dir)["kind"])
