"""Audit refused attempts too: a refusal rolls its transaction back, so its record is written after it."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import connection, transaction

from governance import audit
from registry.errors import Forbidden, InvalidState

F = TypeVar("F", bound=Callable[..., Any])
_pending: ContextVar[list[dict[str, Any]] | None] = ContextVar("stratum_pending_refusals", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[None]:
    """Collect refusals noted inside transactions while the block runs, and record them when it ends."""
    token = _pending.set([])
    try:
        yield
    finally:
        pending = _pending.get() or []
        _pending.reset(token)
        for fields in pending:
            with transaction.atomic():
                audit.append(**fields)


def record(**fields: Any) -> None:
    """Record a refusal now, or (inside a transaction that is about to roll back) once the request ends."""
    if connection.in_atomic_block:
        pending = _pending.get()
        if pending is not None:
            pending.append(fields)
        return
    with transaction.atomic():
        audit.append(**fields)


def audited(attempt: str) -> Callable[[F], F]:
    """Wrap a promotion service so a Forbidden or InvalidState refusal is itself audited, then re-raised."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except (Forbidden, InvalidState) as exc:
                request = kwargs.get("request")
                record(action="promotion.refused", actor=kwargs.get("actor"),
                       target_type="governance.promotionrequest", target_id=getattr(request, "pk", None),
                       target_label=str(request), data={"attempt": attempt, "reason": exc.message},
                       model_id=getattr(request, "model_id", None),
                       model_name=getattr(getattr(request, "model", None), "name", ""),
                       version_number=getattr(getattr(request, "version", None), "number", None))
                raise

        return wrapper  # type: ignore[return-value]

    return decorate
