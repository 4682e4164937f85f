"""What every tracking module shares: the clock, who sees everything, and the checks on keys, text and numbers."""

from __future__ import annotations

import time
from typing import Any

from registry import validation
from registry.errors import InvalidInput


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def sees_everything(actor: Any) -> bool:
    """Staff see and change every experiment, run and logged model."""
    return bool(actor and actor.is_authenticated and (actor.is_staff or actor.is_superuser))


def parse_experiment_id(raw: Any) -> int:
    """Return an experiment id from what a client sent (a string or a number); raise InvalidInput otherwise."""
    try:
        return validation.integer(raw if isinstance(raw, int) else str(raw), "Experiment id", low=0)
    except InvalidInput:
        raise InvalidInput(f"Invalid experiment ID '{str(raw)[:50]}'. Experiment ID must be a valid integer.")


def clean_key(key: Any) -> str:
    """Return `key` if it is 1-250 printable characters; raise InvalidInput otherwise (registry.validation.key)."""
    return validation.key(key)


def clean_text(value: Any, label: str, limit: int, *, multiline: bool = True) -> str:
    """Return `value` as text (None is empty, numbers as their text) of at most `limit` characters, without
    control characters (`multiline` text keeps tabs and line breaks)."""
    return validation.text(value, label, limit, scalars=True, multiline=multiline)


def clean_int(value: Any, label: str, default: int | None = None) -> int | None:
    """Return `value` as an integer a 64-bit column holds (`default` when missing); raise InvalidInput naming
    `label`."""
    if value in (None, ""):
        return default
    return validation.integer(value, label)


def clean_float(value: Any, label: str) -> float:
    """Return `value` as a float (booleans are not numbers; NaN and infinities are, as MLflow logs them); raise
    InvalidInput naming `label`, also for a number too large for a float (10**400)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{label} must be a number.")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{label} must be a number, not {str(value)[:50]!r}.")
