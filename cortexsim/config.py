"""Protocol configurations (frozen dataclasses) to and from dicts, JSON and TOML files, and their docs.

A protocol's config is a frozen dataclass whose numpydoc ``Attributes`` section documents every field
with its unit; :func:`field_docs` reads that section, so the command line shows the same text as the
API documentation.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import tomllib
import typing
from pathlib import Path

from .results import to_jsonable

__all__ = ["config_to_dict", "config_from_dict", "load_config", "read_config_file", "field_docs", "FieldDoc"]


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
        elif isinstance(value, list) and (tuple in (typing.get_origin(hint), hint)
                                          or any(tuple in (typing.get_origin(c), c) for c in candidates)):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


def read_config_file(path: str | Path) -> dict:
    """The mapping stored in a ``.json`` (e.g. a run's ``config.json``) or ``.toml`` file.

    Raises
    ------
    ValueError
        If the file does not exist, has another suffix, is not valid JSON/TOML or holds no mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        if path.suffix == ".toml":
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        elif path.suffix == ".json":
            with open(path) as handle:
                data = json.load(handle)
        else:
            raise ValueError(f"config file must end in .json or .toml, got {path.name}")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def load_config(cls, path: str | Path):
    """Read a config of class ``cls`` from a ``.json`` or ``.toml`` file."""
    return config_from_dict(cls, read_config_file(path))


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    """Documentation of one config field: its type text, description and allowed values (if listed)."""

    type: str
    description: str
    choices: tuple | None = None


_HEADER = re.compile(r"^(?P<names>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?::\s*(?P<type>.*))?$")


def field_docs(cls) -> dict[str, FieldDoc]:
    """The numpydoc ``Attributes`` section of a config class, by field name.

    Entries may document several fields at once (``a, b : float``). A type written as a set of
    strings (``{"renewing", "static"}``) gives the allowed values. Fields a subclass does not document
    take the documentation of the base class that does.

    Examples
    --------
    >>> @dataclasses.dataclass
    ... class Demo:
    ...     \"\"\"A demo.
    ...
    ...     Attributes
    ...     ----------
    ...     kind : {"a", "b"}
    ...         Which kind.
    ...     \"\"\"
    ...     kind: str = "a"
    >>> field_docs(Demo)["kind"].choices
    ('a', 'b')
    """
    inherited = {}
    for base in reversed(cls.__mro__[1:]):
        if dataclasses.is_dataclass(base):
            inherited.update(field_docs(base))
    return {**inherited, **_own_field_docs(cls)}


def _own_field_docs(cls) -> dict[str, FieldDoc]:
    doc = cls.__dict__.get("__doc__") or ""
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = next(i for i, line in enumerate(lines)
                     if line.strip() == "Attributes" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    docs, current, text, type_text = {}, [], [], ""

    def flush():
        if current:
            description = " ".join(" ".join(text).split())
            choices = None
            match = re.fullmatch(r"\{(.*)\}", type_text.strip())
            if match:
                choices = tuple(part.strip().strip("'\"") for part in match.group(1).split(","))
            for name in current:
                docs[name] = FieldDoc(type_text.strip(), description, choices)

    for line in lines[start + 2:]:
        if line and not line.startswith(" ") and line.strip() and set(line.strip()) == {"-"}:
            break  # the next section's underline: the previous line was its title
        header = _HEADER.match(line) if line and not line.startswith(" ") else None
        if header and all(n.strip() in names for n in header.group("names").split(",")):
            flush()
            current = [n.strip() for n in header.group("names").split(",")]
            type_text, text = header.group("type") or "", []
        elif line.startswith(" ") and current:
            text.append(line.strip())
        elif line.strip() and current and not line.startswith(" "):
            flush()
            current = []
    flush()
    return docs
