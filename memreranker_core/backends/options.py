"""Checks of backend options: each returns the value or raises ``ConfigurationError`` naming the option."""

from __future__ import annotations

import math
from typing import Any

from memreranker_core.errors import ConfigurationError


def check_bool(name: str, value: Any) -> bool:
    """``value``, or ``ConfigurationError`` unless it is exactly True or False."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def non_negative(name: str, value: Any) -> float:
    """``value`` as a float, or ``ConfigurationError`` unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a float, or ``ConfigurationError`` unless it is a number of seconds > 0."""
    number = non_negative(name, value)
    if number <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds > 0, not {value!r}")
    return number


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """``value``, or ``ConfigurationError`` unless it is a whole number >= ``minimum`` (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value
