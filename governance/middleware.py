"""Governance's request middleware: the request context the audit trail stamps, and refusals recorded at the end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from governance import context, refusals

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


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
        request_context = context.RequestContext(request_id=request_id, client_ip=_client_ip(request))
        with context.serving(request_context), refusals.collecting():
            # Refusals inside rolled-back transactions are recorded once the view is done, still in this context.
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
