"""Typed overrides: values parsed by field type, unknown keys and bad values name the key."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from unified_latents.config import ConfigError, flatten, from_dict, override, to_dict


@dataclass(frozen=True, kw_only=True)
class Inner:
    lr: float = 1e-3
    steps: int = 10
    betas: tuple[float, float] = (0.9, 0.99)
    kind: Literal["a", "b"] = "a"
    flag: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("steps must be non-negative")


@dataclass(frozen=True, kw_only=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    seed: int = 0


def test_override_parses_each_type() -> None:
    config = override(
        Outer(),
        [
            "inner.lr=2e-4",
            "inner.steps=30",
            "inner.betas=0.8,0.95",
            "inner.kind=b",
            "inner.flag=true",
            "inner.name=hello",
            "seed=7",
        ],
    )
    assert config.inner == Inner(
        lr=2e-4, steps=30, betas=(0.8, 0.95), kind="b", flag=True, name="hello"
    )
    assert config.seed == 7
    assert override(config, ["inner.name=none"]).inner.name is None


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("inner.lrr=1", "inner.lrr"),
        ("nope=1", "nope"),
        ("inner.steps=1.5", "inner.steps"),
        ("inner.kind=c", "inner.kind"),
        ("inner.flag=maybe", "inner.flag"),
        ("inner=3", "inner"),
        ("seed", "key=value"),
        ("inner.steps=-1", "inner.steps"),
    ],
)
def test_bad_overrides_name_the_key(assignment: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        override(Outer(), [assignment])


def test_dict_round_trip_and_unknown_keys() -> None:
    config = override(Outer(), ["inner.betas=0.5,0.6", "seed=3"])
    assert from_dict(Outer, to_dict(config)) == config
    data = to_dict(config)
    data["inner"]["extra"] = 1
    with pytest.raises(ConfigError, match="extra"):
        from_dict(Outer, data)
    assert flatten(config)["inner.betas"] == (0.5, 0.6)
