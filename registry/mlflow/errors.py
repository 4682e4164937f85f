"""One place that turns every error on the MLflow routes into MLflow's {"error_code", "message"} with a 4xx (or
TEMPORARILY_UNAVAILABLE, 503 with Retry-After, when the database is busy)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from registry.errors import BUSY_MESSAGE, RETRY_AFTER_SECONDS, DomainError, database_busy

# MLflow's statuses for its error codes (RESOURCE_ALREADY_EXISTS is 400 there, not 409).
STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "INVALID_STATE": 400,
    "MALFORMED_REQUEST": 400,
    "BAD_REQUEST": 400,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_LIMIT_EXCEEDED": 413,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "TEMPORARILY_UNAVAILABLE": 503,
}
# Domain codes that are not MLflow ErrorCode names.
# A quarantined file is PERMISSION_DENIED to everyone: the client shows the code and the message naming the quarantine.
DOMAIN_CODES = {"PAYLOAD_TOO_LARGE": "RESOURCE_LIMIT_EXCEEDED", "INSUFFICIENT_STORAGE": "RESOURCE_EXHAUSTED",
                "QUARANTINED": "PERMISSION_DENIED", "STORAGE_UNAVAILABLE": "TEMPORARILY_UNAVAILABLE"}
DRF_CODES: list[tuple[type[Exception], str, int]] = [
    (exceptions.NotAuthenticated, "UNAUTHENTICATED", 401),
    (exceptions.AuthenticationFailed, "UNAUTHENTICATED", 401),
    (exceptions.PermissionDenied, "PERMISSION_DENIED", 403),
    (exceptions.NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (exceptions.MethodNotAllowed, "ENDPOINT_NOT_FOUND", 405),
    (exceptions.UnsupportedMediaType, "BAD_REQUEST", 415),
    (exceptions.ParseError, "MALFORMED_REQUEST", 400),
    (exceptions.ValidationError, "INVALID_PARAMETER_VALUE", 400),
    (exceptions.Throttled, "REQUEST_LIMIT_EXCEEDED", 429),
]


# MLflow 3's error classification, which its server adds to every error it raises (mlflow.error_classification:
# the client-side maps, since the server raises the same MlflowException a client would).
ERROR_CLASS = {
    "BAD_REQUEST": "INVALID_PARAMETER_VALUE",
    "ENDPOINT_NOT_FOUND": "RESOURCE_NOT_FOUND",
    "INVALID_PARAMETER_VALUE": "INVALID_PARAMETER_VALUE",
    "INVALID_STATE": "CLIENT_INTERNAL_ERROR",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "RESOURCE_ALREADY_EXISTS": "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST": "RESOURCE_NOT_FOUND",
    "TEMPORARILY_UNAVAILABLE": "CLIENT_INTERNAL_ERROR",
}
SQLSTATE = {"INVALID_STATE": "XXM00", "TEMPORARILY_UNAVAILABLE": "XXM00"}
INVALID_PARAMETER_SQLSTATE = "KAM00"


def error_body(code: str, message: str) -> dict[str, str]:
    """Return MLflow's error shape, with the error class and SQLSTATE MLflow 3 gives the code (when it has one)."""
    body = {"error_code": code, "message": message}
    if code in ERROR_CLASS:
        body["error_class"] = ERROR_CLASS[code]
        body["sqlstate"] = SQLSTATE.get(code, INVALID_PARAMETER_SQLSTATE)
    return body


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _message(value) if key in ("detail", "non_field_errors") else f"{key}: {_message(value)}"
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain, Django and DRF errors to MLflow's shape; anything else stays a (logged) 500."""
    if database_busy(exc):
        response = Response(error_body("TEMPORARILY_UNAVAILABLE", BUSY_MESSAGE), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, DomainError):
        code = DOMAIN_CODES.get(exc.code, exc.code)
        response = Response(error_body(code, exc.message), status=STATUS.get(code, exc.status))
        if response.status_code == 503:  # a store that did not answer: worth a retry
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, DjangoValidationError):
        return Response(error_body("INVALID_PARAMETER_VALUE", "; ".join(exc.messages)), status=400)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    for cls, code, status in DRF_CODES:
        if isinstance(exc, cls):
            response = Response(error_body(code, _message(getattr(exc, "detail", str(exc)))), status=status)
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                response["WWW-Authenticate"] = 'Bearer realm="stratum"'
            if isinstance(exc, exceptions.Throttled) and exc.wait:
                response["Retry-After"] = str(int(exc.wait))
            return response
    if isinstance(exc, exceptions.APIException):
        return Response(error_body("BAD_REQUEST", _message(exc.detail)), status=exc.status_code)
    return None

