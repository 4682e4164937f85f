"""The one rule for addresses: a path or query string holding a control character is refused before any view runs.

PostgreSQL cannot store or compare text holding NUL (it answers an error where SQLite quietly matches nothing), and
no name, filter or id in Stratum holds a control character, so the request is refused with a 400 in the shape the
caller reads: JSON under /api/ and /serve/ (MLflow's shape under its prefixes), a readable page elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from stratum.errors import MLFLOW_PREFIXES

# Paths hold no control character at all; a query string may hold tab and line breaks (a filter typed over
# several lines), never another C0 control or DEL.
PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
QUERY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CODE = "INVALID_PARAMETER_VALUE"


def refusal(request: HttpRequest) -> str | None:
    """Say what is wrong with the request's address, or None when it holds no control character."""
    if PATH_CONTROL.search(request.path):
        return "The address contains a control character (such as NUL); no resource has such a name."
    if QUERY_CONTROL.search(unquote_plus(request.META.get("QUERY_STRING", ""))):
        return "A query parameter contains a control character (such as NUL); remove it and try again."
    return None


class ControlCharacterMiddleware:
    """Answer 400 to a request whose percent-decoded path or query string holds a control character."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        message = refusal(request)
        if message is None:
            return self.get_response(request)
        if request.path.startswith(MLFLOW_PREFIXES):
            return JsonResponse({"error_code": CODE, "message": message}, status=400)
        if request.path.startswith(("/api/", "/serve/")):
            return JsonResponse({"error": {"code": CODE, "message": message, "details": None}}, status=400)
        return render(request, "error.html", {"status": 400, "message": message}, status=400)
