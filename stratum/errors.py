"""Error pages: JSON in the API's error shape under /api/, readable HTML elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from registry.errors import BUSY_MESSAGE, RETRY_AFTER_SECONDS, database_busy

MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/", "/ajax-api/")


def _respond(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path.startswith(MLFLOW_PREFIXES):  # the MLflow client's error shape
        return JsonResponse({"error_code": code, "message": message}, status=status)
    if request.path.startswith(("/api/", "/serve/")):
        return JsonResponse({"error": {"code": code, "message": message, "details": None}}, status=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400."""
    return _respond(request, 400, "MALFORMED_REQUEST", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403."""
    return _respond(request, 403, "PERMISSION_DENIED", str(exception) or "You do not have permission to do that.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404."""
    return _respond(request, 404, "ENDPOINT_NOT_FOUND", "Nothing lives at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    """500: never a stack trace."""
    return _respond(request, 500, "INTERNAL_ERROR", "Something went wrong on our side; it has been logged.")


class DatabaseBusyMiddleware:
    """A request that gave up waiting on a busy database (a lock or statement timeout, a deadlock, SQLite's lock)
    answers 503 with Retry-After: a readable page, or JSON in the error shape of its API and the serving gateway.
    The two APIs translate these errors in their own exception handlers; this covers pages and /serve/."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_busy(exception):
            return None
        code = "TEMPORARILY_UNAVAILABLE" if request.path.startswith(MLFLOW_PREFIXES) else "DATABASE_BUSY"
        response = _respond(request, 503, code, BUSY_MESSAGE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
