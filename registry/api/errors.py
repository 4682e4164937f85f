"""One place that turns every API error into {"error": {"code", "message", "details"}} with a 4xx status (503 with
Retry-After when the database is busy: a lock or statement timeout, a deadlock, a serialization failure)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry.errors import BUSY_MESSAGE, RETRY_AFTER_SECONDS, DomainError, database_busy

DRF_CODES = {
    exceptions.NotAuthenticated: "UNAUTHENTICATED",
    exceptions.AuthenticationFailed: "UNAUTHENTICATED",
    exceptions.PermissionDenied: "PERMISSION_DENIED",
    exceptions.NotFound: "RESOURCE_DOES_NOT_EXIST",
    exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    exceptions.NotAcceptable: "NOT_ACCEPTABLE",
    exceptions.ParseError: "MALFORMED_REQUEST",
    exceptions.ValidationError: "INVALID_PARAMETER_VALUE",
    exceptions.Throttled: "REQUEST_LIMIT_EXCEEDED",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """Return the API's error shape."""
    return {"error": {"code": code, "message": message, "details": details}}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain, Django and DRF errors to the error shape; anything else is left to a 500 page."""
    if database_busy(exc):
        response = Response(error_body("DATABASE_BUSY", BUSY_MESSAGE), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, DomainError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
        if exc.status == 503:  # a store that did not answer: worth a retry
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, DjangoValidationError):
        messages = exc.messages
        return Response(error_body("INVALID_PARAMETER_VALUE", "; ".join(messages), messages), status=400)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "INVALID_PARAMETER_VALUE")
    if response.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        code = "PAYLOAD_TOO_LARGE"
    detail = getattr(exc, "detail", None)
    details = detail if isinstance(detail, (dict, list)) else None
    response.data = error_body(code, _first_message(detail) if detail is not None else str(exc), details)
    return response
