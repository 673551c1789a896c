"""Checks of user-given numbers, in one place: numpy scalars pass, bools and strings are refused by name."""

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any


def _kind(value: Any) -> str:
    if isinstance(value, str):
        # YAML 1.1 (PyYAML) reads 1e-1 as the string "1e-1": a number needs a dot, 1.0e-1.
        return f"the string {value!r} (in YAML write numbers with a dot, e.g. 1.0e-1, or they stay strings)"
    return repr(value)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 1 (Python or numpy integers), else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {_kind(value)}.")
    return int(value)


def finite_number(name: str, value: Any, *, positive: bool = False, non_negative: bool = False) -> float:
    """
    ``value`` as a finite ``float`` (Python or numpy reals), else a ``ValueError`` naming ``name``.

    :param positive: Also require ``value > 0``.
    :param non_negative: Also require ``value >= 0``.
    """
    requirement = "a finite positive number" if positive else "a finite number >= 0" if non_negative else "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be {requirement}, got {_kind(value)}.")
    if (positive and value <= 0) or (non_negative and value < 0):
        raise ValueError(f"{name} must be {requirement}, got {_kind(value)}.")
    return float(value)


def refuse_unknown_keys(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """
    A key that is not a setting (a typo such as ``action_reapeat``) is a ``ValueError`` naming the
    closest valid one, or every valid one when none is close.

    :param given: The keys the user gave.
    :param known: The valid keys.
    :param what: What the keys are, for the message (``"wrapper setting for level 0"``).
    """
    valid = sorted(known)
    for key in sorted(set(given) - set(valid)):
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid: {valid}"
        raise ValueError(f"unknown {what}: {key!r}; {hint}")
