"""Protocol configurations (frozen dataclasses) to and from dicts, JSON and TOML files."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from pathlib import Path

from .results import to_jsonable

__all__ = ["config_to_dict", "config_from_dict", "load_config"]


def config_to_dict(config) -> dict:
    """A (possibly nested) config dataclass as a JSON-serialisable dict."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return to_jsonable(config)


def config_from_dict(cls, data: dict):
    """Build config class ``cls`` from ``data``; nested dataclass fields are rebuilt from dicts.

    Raises
    ------
    ValueError
        For keys that ``cls`` does not have (named in the message, with the allowed ones).
    """
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} must be given as a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        candidates = typing.get_args(hint) or (hint,)
        nested = next((c for c in candidates if dataclasses.is_dataclass(c)), None)
        if nested is not None and isinstance(value, dict):
            value = config_from_dict(nested, value)
        elif isinstance(value, list) and tuple in (typing.get_origin(hint), hint):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def load_config(cls, path: str | Path):
    """Read a config of class ``cls`` from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    elif path.suffix == ".json":
        with open(path) as handle:
            data = json.load(handle)
    else:
        raise ValueError(f"config file must end in .json or .toml, got {path.name}")
    return config_from_dict(cls, data)
