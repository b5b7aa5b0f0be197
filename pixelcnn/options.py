"""One source for every setting: the config dataclasses' fields carry their help, limits and choices,
and both the checks on construction and the command line's options are made from them.

A field declared with :func:`option` is checked by :func:`check_fields` (one
line that says what is wrong) and becomes ``--field-name`` through
:func:`add_options`; the dashboard builds the same dataclasses, so a value
it accepts is a value the CLI accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Sequence

from .errors import ConfigError


def option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
           above: float | None = None, choices: Sequence[str] | None = None, flag: str | None = None,
           scale: float = 1.0) -> Any:
    """A dataclass field with its command-line help and its limits: integers and numbers in
    [``low``, ``high``] (or > ``above``), strings among ``choices``. ``flag`` and ``scale`` rename
    and rescale it on the command line (``--checkpoint-minutes`` sets ``checkpoint_seconds``)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "low": low, "high": high, "above": above, "choices": choices, "flag": flag, "scale": scale})


def _kind(field: dataclasses.Field) -> str:
    annotation = str(field.type)
    for name in ("bool", "int", "float", "str"):
        if annotation.startswith(name):
            return name
    raise TypeError(f"option {field.name} has an unsupported type {annotation}")


def _optional(field: dataclasses.Field) -> bool:
    return "None" in str(field.type)


def _requirement(kind: str, meta: dict, scale: float = 1.0) -> str:
    """What a numeric option must be, in the unit it is given in (``scale`` converts to the field's)."""
    low, high, above = (None if meta[k] is None else meta[k] / scale for k in ("low", "high", "above"))
    what = "an integer" if kind == "int" else "a number"
    if above is not None:
        return f"{what} > {above:g}" + (f" and <= {high:g}" if high is not None else "")
    if high is not None:
        return f"{what} in [{low:g}, {high:g}]"
    return f"{what} >= {low:g}"


def _within(value: float, meta: dict) -> bool:
    return math.isfinite(value) and (meta["low"] is None or value >= meta["low"]) and \
        (meta["above"] is None or value > meta["above"]) and (meta["high"] is None or value <= meta["high"])


def check_fields(obj: Any) -> None:
    """Check every :func:`option` field of a dataclass instance; raise a one-line ConfigError."""
    found = problems(type(obj), {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)})
    if found:
        raise ConfigError(found[0])


def problems(cls: type, values: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """Every :func:`option` field of dataclass ``cls`` among ``values`` that its limits refuse, one line
    each, the field called by ``names`` (a form's labels) or by its option name."""
    found = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "help" not in meta or field.name not in values:
            continue
        value = values[field.name]
        name = (names or {}).get(field.name) or field.name.replace("_", "-")
        if value is None and _optional(field):
            continue
        kind = _kind(field)
        if kind == "bool":
            if not isinstance(value, bool):
                found.append(f"{name} must be true or false, got {value!r}")
        elif kind == "str":
            if meta["choices"] is not None and value not in meta["choices"]:
                found.append(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
            elif not isinstance(value, str):
                found.append(f"{name} must be text, got {value!r}")
        else:
            is_number = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
            if isinstance(value, bool) or not is_number or not _within(value, meta):
                found.append(f"{name} must be {_requirement(kind, meta)}, got {value!r}")
    return found


def _parser_type(field: dataclasses.Field):
    """An argparse type that parses text and applies the field's own check, so the message is the same."""
    kind, meta = _kind(field), field.metadata

    def parse(text: str) -> Any:
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind == 'int' else 'a number'}, "
                                             f"got {text!r}") from None
        if not _within(value * meta["scale"], meta):
            raise argparse.ArgumentTypeError(f"expected {_requirement(kind, meta, meta['scale'])}, got {text}")
        return value

    return parse


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, cls: type, names: Sequence[str], *,
                choices: dict[str, Sequence[str]] | None = None, default_note: str | None = None) -> None:
    """``--name`` options for the fields ``names`` of dataclass ``cls``, with the fields' help, limits and
    choices; each defaults to None (not given), and its help shows the field's default (or ``default_note``)."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for name in names:
        field = fields[name]
        meta, kind = field.metadata, _kind(field)
        if default_note:
            text = f"{meta['help']} ({default_note})"
        elif field.default is None or kind == "bool":
            text = meta["help"]
        else:
            shown = field.default / meta["scale"] if kind in ("int", "float") else field.default
            text = f"{meta['help']} (default {shown:g})" if kind in ("int", "float") else \
                f"{meta['help']} (default {shown})"
        if kind == "bool":
            parser.add_argument(flag_of(field), dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=meta["help"])
        elif kind == "str":
            options = (choices or {}).get(name) or meta["choices"]
            parser.add_argument(flag_of(field), dest=name, choices=list(options) if options else None, help=text)
        else:
            parser.add_argument(flag_of(field), dest=name, type=_parser_type(field), help=text,
                                metavar=flag_of(field).lstrip("-").replace("-", "_").upper())


def given_options(args: argparse.Namespace, cls: type, names: Sequence[str]) -> dict[str, Any]:
    """The fields among ``names`` given on the command line, scaled back to the field's unit."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    given = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            scale = fields[name].metadata.get("scale", 1.0)
            given[name] = value * scale if scale != 1.0 else value
    return given
