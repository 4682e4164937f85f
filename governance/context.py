"""Per-request context (request id, client IP) that the audit trail stamps on every event."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


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


def _client_ip(request: HttpRequest) -> str:
    if settings.SECURE_PROXY_SSL_HEADER:  # behind a trusted proxy: the left-most forwarded address is the client
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return (request.META.get("REMOTE_ADDR") or "")[:64]


class RequestContextMiddleware:
    """Give every request an id (the caller's X-Request-ID when well-formed) and remember the client IP."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        from governance.refusals import collecting

        token = _current.set(RequestContext(request_id=request_id, client_ip=_client_ip(request)))
        try:
            with collecting():  # refusals inside rolled-back transactions are recorded once the view is done
                response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = request_id
        return response
