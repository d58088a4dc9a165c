"""Typed configuration: frozen dataclasses, `--set key=value` overrides, JSON round trips.

Each component defines its own frozen, keyword-only config dataclass next to its code; run configs
compose them (see `runs/presets.py`). This module only knows how to walk, override and (de)serialise
such trees. Unknown keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the offending key."""


def check_at_least(config: Any, minimum: float, *names: str) -> None:
    """For a config's `__post_init__`: raise ValueError naming the first of the fields `names`
    whose value is below `minimum` (or NaN)."""
    for name in names:
        value = getattr(config, name)
        if not value >= minimum:
            raise ValueError(f"{name} must be ≥ {minimum}, got {value}")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _number(value: Any, key: str, expected: str) -> float:
    """`value` (a number or its text) as a float; booleans and NaN are refused, naming `key` and
    what was `expected`."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {expected}, got {value!r}") from None
    if math.isnan(number):  # NaN passes every `<` range check unnoticed: never a setting
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    return number


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert `value` (a string from the command line or a JSON value) to `annotation`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: cannot parse {value!r}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
    if origin in (tuple, list):
        items: Iterable[Any]
        if isinstance(value, str):
            items = [] if value.strip() in ("", "()", "[]") else value.strip("()[] ").split(",")
        elif isinstance(value, list | tuple):
            items = value
        else:
            raise ConfigError(f"{key}: expected a comma-separated list, got {value!r}")
        inner = args[0] if args else str
        return tuple(
            _coerce(item.strip() if isinstance(item, str) else item, inner, key) for item in items
        )
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a group of settings, got {value!r}")
        return from_dict(annotation, value, prefix=f"{key}.")  # type: ignore[arg-type]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        number = _number(value, key, "an integer")
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if annotation is float:
        return _number(value, key, "a number")
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {annotation!r}")


def override(config: T, assignments: Iterable[str]) -> T:
    """Apply `dotted.key=value` strings to a (nested) frozen dataclass, returning a new one."""
    for assignment in assignments:
        key, separator, raw = assignment.partition("=")
        if not separator:
            raise ConfigError(f"--set expects key=value, got {assignment!r}")
        config = _set_path(config, key.strip().split("."), raw.strip(), key.strip())
    check_across_fields(config)
    return config


def check_across_fields(config: Any, prefix: str = "") -> None:
    """Run the `check_fields()` of every config group in the tree: rules across fields (e.g. a
    batch divisible by the accumulation steps), which `__post_init__` cannot check because
    `--set` changes one field at a time. Raises ConfigError naming the group."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            check_across_fields(value, f"{prefix}{field.name}.")
    check = getattr(config, "check_fields", None)
    if check is not None:
        try:
            check()
        except ValueError as error:
            raise ConfigError(f"{prefix.rstrip('.') or type(config).__name__}: {error}") from None


def _set_path(node: Any, path: list[str], raw: str, full_key: str) -> Any:
    if not dataclasses.is_dataclass(node):
        raise ConfigError(f"unknown config key {full_key!r}")
    names = {field.name for field in dataclasses.fields(node)}
    head = path[0]
    if head not in names:
        close = ", ".join(sorted(names))
        raise ConfigError(f"unknown config key {full_key!r}: {head!r} is not one of {close}")
    child = getattr(node, head)
    if len(path) > 1:
        new_child = _set_path(child, path[1:], raw, full_key)
    else:
        if dataclasses.is_dataclass(child):
            raise ConfigError(f"{full_key} is a group of settings; set one of its fields")
        new_child = _coerce(raw, _field_types(type(node))[head], full_key)
    try:
        return dataclasses.replace(node, **{head: new_child})  # type: ignore[type-var]
    except (ValueError, TypeError) as error:  # a component's own validation (__post_init__)
        raise ConfigError(f"{full_key}: {error}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Rebuild a config from `to_dict` output; unknown keys are errors that name the key."""
    hints = _field_types(cls)
    known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown config key {prefix}{key!r} for {cls.__name__}")
    values = {key: _coerce(value, hints[key], f"{prefix}{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{prefix or cls.__name__}: {error}") from None


def save_json(config: Any, path: Path) -> None:
    path.write_text(json.dumps(to_dict(config), indent=2) + "\n")


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{"optim.lr": 1e-4, ...}` for printing and for sweep tables."""
    flat: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, key + "."))
        else:
            flat[key] = value
    return flat
