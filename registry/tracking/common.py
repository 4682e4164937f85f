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
        value = int(str(raw))
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid experiment id {raw!r}.")
    if value < 0:
        raise InvalidInput(f"Invalid experiment id {raw!r}.")
    return value


def clean_key(key: Any) -> str:
    """Return `key` if it is 1-250 printable characters; raise InvalidInput otherwise (registry.validation.key)."""
    return validation.key(key)


def clean_text(value: Any, label: str, limit: int) -> str:
    """Return `value` as text (None is empty, numbers as their text) of at most `limit` characters."""
    return validation.text(value, label, limit, scalars=True)


def clean_int(value: Any, label: str, default: int | None = None) -> int | None:
    """Return `value` as an integer (`default` when missing); raise InvalidInput naming `label`."""
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label} must be an integer, not {value!r}.")


def clean_float(value: Any, label: str) -> float:
    """Return `value` as a float (booleans are not numbers); raise InvalidInput naming `label`."""
    if isinstance(value, bool):
        raise InvalidInput(f"{label} must be a number.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label} must be a number, not {value!r}.")
