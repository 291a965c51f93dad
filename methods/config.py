"""Type checks for the frozen method configs, read off their annotations.

Range checks say what a value may be; this says what *kind* of value it is, so that
``IpdConfig(init=6)`` or ``IpdConfig(steps=3.5)`` fails at construction with a message rather
than deep inside torch. Rules, per field annotation:

- ``bool``: a bool. ``int``: an int, not a bool. ``str``: a str.
- ``float``: a float; an int (not a bool) is converted to float (``init=6`` means ``6.0``).
- ``tuple[X, ...]``: a tuple whose items follow the rule for ``X`` (ints converted for floats).
- ``X | None``: None or an ``X``. A class (a nested config): an instance of it.

Call :func:`check_types` first thing in a config's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

_MISMATCH = object()  # returned by _coerce when a value does not fit its annotation


def check_types(config: Any) -> None:
    """Check every field of the dataclass ``config`` against its annotation; convert ints given
    for float fields to float (in place, also on frozen dataclasses). Raises TypeError."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        hint = hints[f.name]
        value = getattr(config, f.name)
        fixed = _coerce(value, hint)
        if fixed is _MISMATCH:
            raise TypeError(
                f"{type(config).__name__}.{f.name} must be {_describe(hint)}, "
                f"got {type(value).__name__} {value!r}"
            )
        if fixed is not value:
            object.__setattr__(config, f.name, fixed)


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` if it fits ``hint``, a converted value if it fits after int -> float, else
    ``_MISMATCH``."""
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _MISMATCH
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            fixed = _coerce(value, arg)
            if fixed is not _MISMATCH:
                return fixed
        return _MISMATCH
    if origin is tuple:
        return _coerce_tuple(value, args)
    if origin is typing.Literal:
        return value if value in args else _MISMATCH
    if hint is type(None):
        return value if value is None else _MISMATCH
    if isinstance(hint, type):
        return value if isinstance(value, hint) else _MISMATCH
    raise TypeError(f"check_types does not know the annotation {hint!r}")


def _coerce_tuple(value: Any, args: tuple) -> Any:
    if not isinstance(value, tuple):
        return _MISMATCH
    item_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
    if len(item_hints) != len(value):
        return _MISMATCH
    items = [_coerce(v, h) for v, h in zip(value, item_hints, strict=True)]
    if any(item is _MISMATCH for item in items):
        return _MISMATCH
    changed = any(item is not v for item, v in zip(items, value, strict=True))
    return tuple(items) if changed else value


def _describe(hint: Any) -> str:
    """``a float``, ``an int``, ``a tuple[float, ...]``, ``an IpdConfig``."""
    name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    if name == "float":
        name = "float (an int is converted)"
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


# ----- ranges shared by the mask-learning configs (methods.descent) ------------------------------
_DESCENT_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("lam", lambda v: v >= 0, ">= 0"),
    ("steps", lambda v: v >= 1, ">= 1"),
    ("lr", lambda v: v > 0, "> 0"),
    ("warmup", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("patience", lambda v: v >= 1, ">= 1"),
    ("tol", lambda v: v >= 0, ">= 0"),
)


def check_descent_ranges(config: Any) -> None:
    """The ranges of the descent fields a config has (``lam``, ``steps``, ``lr``, ``warmup``,
    ``patience``, ``tol``) and, where it has ``beta``/``gamma``/``zeta``, of the hard-concrete
    constants (Louizos et al. 2018): ValueError naming the field. Call after :func:`check_types`."""
    for name, ok, rule in _DESCENT_RANGES:
        if hasattr(config, name) and not ok(getattr(config, name)):
            raise ValueError(f"{name} must be {rule}, got {getattr(config, name)}")
    if hasattr(config, "zeta"):
        beta, gamma, zeta = config.beta, config.gamma, config.zeta
        if not (beta > 0 and gamma < 0 and zeta > 1):
            raise ValueError(
                f"hard-concrete constants need beta > 0, gamma < 0, zeta > 1; got "
                f"beta={beta}, gamma={gamma}, zeta={zeta}"
            )
