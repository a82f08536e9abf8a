"""Search spaces as TOML: print a method's default space, and read a user's overrides of it.

A space file has one entry per hyperparameter to change; the others keep their defaults:

    dropout = 0.3                          # fixed: every trial uses 0.3
    [dense_units]
    values = [256, 512]                    # a choice among these
    [learning_rate]
    min = 1e-4
    max = 1e-3
    sampling = "log"                       # optional: "linear" (default) or "log"; `step` too

The overrides become a `keras_tuner.HyperParameters` handed to the tuner (`hyperparameters=...,
tune_new_entries=True`): keras-tuner's own way to replace what a HyperModel declares.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from tuning.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RANGE_KEYS = {"min", "max", "step", "sampling"}


@functools.cache
def default_space(method: str):
    """The `keras_tuner.HyperParameters` that `method`'s HyperModel declares (read by building
    one model with random weights, so it is always the code's own space)."""
    import keras
    import keras_tuner as kt

    from search_spaces import create_hypermodel

    hp = kt.HyperParameters()
    create_hypermodel(method, weights="none").build(hp)
    keras.backend.clear_session()
    return hp


def space_toml(method: str) -> str:
    """`method`'s default space as a TOML file a user can copy and edit."""
    lines = [f"# The default search space of --method {method}; copy, edit, pass --space FILE."]
    for hp in default_space(method).space:
        config = hp.get_config()
        kind = type(hp).__name__
        if kind == "Fixed":
            lines.append(
                f"\n# {hp.name} = {_toml_value(config['value'])} is set by the command "
                f"line, not searched"
            )
            continue
        lines.append(f"\n[{hp.name}]  # {kind}")
        if kind in ("Choice", "Boolean"):
            values = config.get("values", [False, True])
            lines.append(f"values = {_toml_value(list(values))}")
        else:
            lines += [
                f"min = {_toml_value(config['min_value'])}",
                f"max = {_toml_value(config['max_value'])}",
            ]
            if config.get("step") is not None:
                lines.append(f"step = {_toml_value(config['step'])}")
            if config.get("sampling") not in (None, "linear"):
                lines.append(f"sampling = {_toml_value(config['sampling'])}")
    return "\n".join(lines) + "\n"


def load_space(path: str, method: str):
    """The overrides of the space file `path`, checked against `method`'s default space.

    Raises:
        UsageError: unreadable TOML, an unknown name, or a value or range the name cannot take.
    """
    import keras_tuner as kt

    try:
        entries = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"--space {path}: not a readable TOML file ({error})") from None
    defaults = {hp.name: hp for hp in default_space(method).space}
    overrides = kt.HyperParameters()
    for name, entry in entries.items():
        if name not in defaults:
            raise UsageError(
                f"--space {path}: unknown hyperparameter {name!r} for --method "
                f"{method}; known: {', '.join(defaults)}"
            )
        try:
            _declare(overrides, defaults[name], entry)
        except (ValueError, TypeError) as error:
            raise UsageError(f"--space {path}: [{name}] {error}") from None
    return overrides


def _declare(overrides, default, entry) -> None:
    """Declares `default`'s replacement in `overrides`, or raises ValueError/TypeError (why)."""
    kind = type(default).__name__
    if kind == "Fixed":
        raise ValueError("is set by the command line, not searched")
    if not isinstance(entry, dict):
        entry = {"fixed": entry}
    unknown = set(entry) - ({"fixed"} if "fixed" in entry else RANGE_KEYS | {"values"})
    if unknown or not entry:
        raise ValueError(
            f"expected one of: fixed = V; values = [...]; min/max (with optional "
            f"step, sampling). Received keys: {sorted(entry)}"
        )
    if "fixed" in entry:
        overrides.Fixed(default.name, _checked(default, entry["fixed"]))
    elif "values" in entry:
        values = entry["values"]
        if not isinstance(values, list) or not values:
            raise ValueError("values must be a non-empty list")
        values = [_checked(default, v) for v in values]
        if kind == "Boolean" and len(set(values)) == 2:  # a Choice would hold 0 and 1
            overrides.Boolean(default.name)
        elif kind == "Boolean":
            overrides.Fixed(default.name, values[0])
        else:
            overrides.Choice(default.name, values)
    elif kind in ("Int", "Float"):
        low, high = (_checked(default, entry.get(k)) for k in ("min", "max"))
        if not low < high:
            raise ValueError(f"min must be below max. Received: min={low}, max={high}")
        sampling = entry.get("sampling", "linear")
        if sampling not in ("linear", "log") or (sampling == "log" and low <= 0):
            raise ValueError(
                f"sampling must be 'linear' or 'log' (log needs min > 0). "
                f"Received: {sampling!r} with min={low}"
            )
        step = entry.get("step", default.step if kind == "Int" else None)
        getattr(overrides, kind)(default.name, low, high, step=step, sampling=sampling)
    else:
        raise ValueError(f"a {kind} takes `fixed` or `values`, not a min/max range")


def _checked(default, value):
    """`value` if `default` (an Int, Float, Choice or Boolean) can take it; Floats take ints."""
    kind, config = type(default).__name__, default.get_config()
    expected = {"Boolean": bool, "Int": int, "Float": float}.get(kind) or type(config["values"][0])
    accepted = (int, float) if expected is float else expected
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, accepted):
        raise TypeError(f"expected {expected.__name__} values. Received: {value!r}")
    if isinstance(value, str) and value not in config["values"]:  # names the code branches on
        raise ValueError(
            f"{value!r} is not one the model supports ({', '.join(map(repr, config['values']))})"
        )
    if kind == "Int" and not config["min_value"] <= value <= config["max_value"]:
        raise ValueError(
            f"{value} is outside what the model supports "
            f"({config['min_value']}-{config['max_value']})"
        )
    return float(value) if expected is float else value


def fixing_toml(values: dict) -> str:
    """A space file that fixes each name to its value, as `--space` reads it."""
    return "".join(f"{name} = {_toml_value(value)}\n" for name, value in values.items())


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
