"""Per-request context (request id, client IP) that the audit trail stamps on every event."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """Who asked from where: the request id and the client's IP address."""

    request_id: str = ""
    client_ip: str = ""


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("stratum_request_context", default=None)


def current() -> RequestContext:
    """Return the context of the request being served (empty outside requests)."""
    return _current.get() or _EMPTY


@contextlib.contextmanager
def serving(request_context: RequestContext) -> Iterator[None]:
    """Make `request_context` the current one while the block runs."""
    token = _current.set(request_context)
    try:
        yield
    finally:
        _current.reset(token)
