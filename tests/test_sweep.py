"""Grid parsing for `ul sweep`: aliases, typed values, canonical names, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from unified_latents.config import ConfigError
from unified_latents.runs.presets_tiny import autoencoder_tiny
from unified_latents.sweep import (
    grid_points,
    parse_axis,
    parse_grid,
    point_assignments,
    point_name,
    training_finished,
)
from unified_latents.training.config import TrainConfig

TEMPLATE = autoencoder_tiny()


def test_aliases_expand_to_config_keys_with_typed_values() -> None:
    loss_factor = parse_axis("loss_factor=1.2,1.5,2", TEMPLATE)
    assert loss_factor.key == "model.loss_factor"
    assert loss_factor.values == (1.2, 1.5, 2.0) and loss_factor.texts == ("1.2", "1.5", "2")
    bias = parse_axis("bias=-2,0,2.0", TEMPLATE)
    assert bias.key == "model.decoder_bias" and bias.texts == ("-2", "0", "2")
    assert parse_axis("c_lf=1.5", TEMPLATE).key == "model.loss_factor"
    steps = parse_axis("train.max_steps=10,20", TEMPLATE)
    assert steps.values == (10, 20) and all(isinstance(v, int) for v in steps.values)


def test_points_are_the_cartesian_product_with_readable_names() -> None:
    axes = parse_grid(["loss_factor=1.5,2", "model.decoder_bias=-2,0,2"], TEMPLATE)
    points = grid_points(axes)
    assert len(points) == 6
    assert point_name(points[0], axes) == "loss_factor=1.5,decoder_bias=-2"
    assert point_assignments(points[-1]) == ["model.loss_factor=2", "model.decoder_bias=2"]


def test_ambiguous_short_names_fall_back_to_the_full_key() -> None:
    axes = parse_grid(["model.encoder.latent_channels=2,4", "model.prior.depth=1"], TEMPLATE)
    assert point_name(grid_points(axes)[0], axes) == "latent_channels=2,depth=1"
    axes = parse_grid(["model.prior.width=32", "model.decoder.transformer_width=32"], TEMPLATE)
    assert point_name(grid_points(axes)[0], axes) == "width=32,transformer_width=32"
    axes = parse_grid(["model.prior.depth=1", "model.decoder.transformer_depth=1"], TEMPLATE)
    assert "depth=1" in point_name(grid_points(axes)[0], axes)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["model.lossfactor=1,2"], "model.lossfactor"),
        (["loss_factor=1,two"], "model.loss_factor"),
        (["loss_factor=0,1"], "model.loss_factor"),  # the config's own check (must be > 0)
        (["loss_factor=1,1.0"], "repeated"),
        (["loss_factor=1", "c_lf=2"], "more than once"),
        (["loss_factor"], "KEY=V1,V2"),
        (["bias=1,,2"], "model.decoder_bias"),
        (["model.encoder.channels=16"], "list-valued"),
        ([], "at least one --grid"),
    ],
)
def test_bad_grids_are_errors_naming_the_key(specs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_grid(specs, TEMPLATE)


def test_a_run_without_checkpoints_is_not_finished(tmp_path: Path) -> None:
    assert not training_finished(tmp_path / "missing", TrainConfig(max_steps=1))
