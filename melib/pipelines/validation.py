"""Parameter validators for every paper's ``configure``: each returns the value
normalised or raises :class:`ParameterError`, whose message reads ``parameter NAME=VALUE:
use ...`` (the field and the fix). ``None`` (:data:`FROM_PROFILE`) means "the profile's
value" and ``"all"`` (:data:`NO_CAP`) a lifted cap; :mod:`melib.pipelines.common`
re-exports all of it."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "FROM_PROFILE",
    "NO_CAP",
    "ParameterError",
    "from_profile",
    "whole_number",
    "positive_number",
    "number_in",
    "choice",
    "flag",
    "cap",
    "fold_limit",
    "dataset_keys",
]

FROM_PROFILE = None
"""The one sentinel for "the profile's value": every ``configure`` parameter left at
``None`` is filled in from the profile."""

NO_CAP = "all"
"""A cap that is lifted: every LOSO fold, every negative window (the papers' setting)."""


class ParameterError(ValueError):
    """A notebook or ``configure`` parameter with a value that cannot run; the message
    names the parameter, the value and the fix."""


def _fail(name: str, value, fix: str):
    raise ParameterError(f"parameter {name}={value!r}: {fix}")


def from_profile(value, profile_value):
    """``value``, or the profile's when it was left at :data:`FROM_PROFILE`."""
    return profile_value if value is FROM_PROFILE else value


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def whole_number(
    name: str, value, *, minimum: int = 1, maximum: int | None = None, allow_none: bool = False, fix: str = ""
) -> int | None:
    """An int within bounds (floats like ``3.0`` are accepted), else a ParameterError."""
    if value is None and allow_none:
        return None
    ok = _is_number(value) and math.isfinite(float(value)) and float(value) == int(value)
    if ok and int(value) >= minimum and (maximum is None or int(value) <= maximum):
        return int(value)
    bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    _fail(
        name,
        value,
        f"use a whole number {bounds}" + (" or None" if allow_none else "") + (f" ({fix})" if fix else ""),
    )


def positive_number(name: str, value, *, allow_none: bool = False, fix: str = "") -> float | None:
    """A finite number > 0."""
    if value is None and allow_none:
        return None
    if _is_number(value) and math.isfinite(float(value)) and float(value) > 0:
        return float(value)
    _fail(name, value, "use a number > 0" + (" or None" if allow_none else "") + (f" ({fix})" if fix else ""))


def number_in(
    name: str,
    value,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    fix: str = "",
) -> float | None:
    """A finite number in the interval from ``low`` to ``high`` (closed unless said open)."""
    if value is None and allow_none:
        return None
    if _is_number(value) and math.isfinite(float(value)):
        v = float(value)
        if (v > low if low_open else v >= low) and (v < high if high_open else v <= high):
            return v
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    _fail(
        name,
        value,
        f"use a number in {interval}" + (" or None" if allow_none else "") + (f" ({fix})" if fix else ""),
    )


def choice(name: str, value, choices: Iterable, *, allow_none: bool = False):
    """One of ``choices``; the error lists them."""
    choices = tuple(choices)
    if value is None and allow_none:
        return None
    if isinstance(value, str) and value in choices:
        return value
    if not isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    _fail(name, value, f"use one of {listed}" + (" or None (the profile's)" if allow_none else ""))


def flag(name: str, value, *, allow_none: bool = False) -> bool | None:
    """True or False (a notebook parameter of 0/1 or "true" is refused: it reads as a typo)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    _fail(name, value, "use True or False" + (" or None (the profile's)" if allow_none else ""))


def cap(name: str, value, profile_value, *, minimum: int = 1, fix: str = "") -> int | None:
    """A count cap: ``None`` takes the profile's, ``"all"`` lifts it (returns None),
    a whole number >= ``minimum`` is used as given."""
    if value is FROM_PROFILE:
        return profile_value
    if isinstance(value, str) and value.lower() == NO_CAP:
        return None
    if isinstance(value, str) or not _is_number(value):
        _fail(
            name,
            value,
            f"use a whole number >= {minimum}, 'all' (no cap) or None (the profile's)"
            + (f"; {fix}" if fix else ""),
        )
    return whole_number(
        name, value, minimum=minimum, fix=fix or "'all' lifts the cap, None takes the profile's"
    )


def fold_limit(value, profile_value, name: str = "max_folds") -> int | None:
    """LOSO fold cap: leave-one-subject-out needs at least 2 folds (one to test, one to train)."""
    return cap(
        name,
        value,
        profile_value,
        minimum=2,
        fix="leave-one-subject-out needs 2 or more folds; 'all' is one fold per subject",
    )


def dataset_keys(
    value, allowed: Sequence[str], profile_value: Sequence[str], name: str = "datasets"
) -> tuple:
    """A dataset key, a list of keys, ``"all"`` (or ``"both"``) or None (the profile's)."""
    if value is FROM_PROFILE:
        return tuple(profile_value)
    if isinstance(value, str):
        if value.lower() in ("all", "both"):
            return tuple(allowed)
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        keys = tuple(value)
    except TypeError:
        keys = (value,)
    bad = [k for k in keys if k not in allowed]
    if bad or not keys:
        _fail(
            name,
            bad[0] if bad else value,
            f"use one of {', '.join(allowed)}, a list of them, 'all' or None (the profile's)",
        )
    return keys
