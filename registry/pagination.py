"""Keyset (cursor) pagination with opaque cursors and a validated max_results."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.db.models import Q, QuerySet

from registry import validation
from registry.errors import InvalidInput

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def max_results(params: Any, default: int = DEFAULT_PAGE) -> int:
    """Read max_results (1..1000) from query params, or raise InvalidInput."""
    raw = params.get("max_results")
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"max_results must be an integer, not {raw!r}.")
    if not 1 <= value <= MAX_PAGE:
        raise InvalidInput(f"max_results must be between 1 and {MAX_PAGE}, not {value}.")
    return value


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def decode_cursor(raw: str | None, arity: int) -> list[Any] | None:
    if not raw:
        return None
    try:
        values = validation.json_loads(base64.urlsafe_b64decode(raw.encode() + b"===").decode())
    except (ValueError, TypeError):
        raise InvalidInput("Invalid page cursor.")
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("Invalid page cursor.")
    return values


def paginate(qs: QuerySet, params: Any, keys: list[tuple[str, bool]]) -> tuple[list[Any], str | None]:
    """Return one page of `qs` (instances or .values() rows) ordered by `keys` ((field, descending) pairs, last one
    unique) and the next cursor."""
    size = max_results(params)
    after = decode_cursor(params.get("cursor"), len(keys))
    qs = qs.order_by(*[f"-{f}" if desc else f for f, desc in keys])
    if after is not None:
        condition = Q()
        for i, (field, desc) in enumerate(keys):
            step = Q(**{f"{field}__{'lt' if desc else 'gt'}": after[i]})
            for j in range(i):
                step &= Q(**{keys[j][0]: after[j]})
            condition |= step
        qs = qs.filter(condition)
    rows = list(qs[: size + 1])
    nxt = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        nxt = encode_cursor([_value(last, field) for field, _ in keys])
    return rows, nxt


def _value(obj: Any, field: str) -> Any:
    if isinstance(obj, dict):  # a row of .values(), keyed by the lookup itself
        return obj[field]
    for part in field.split("__"):
        obj = getattr(obj, part)
    return obj
