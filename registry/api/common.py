"""What the native API views share: schema parameters, input validation, the page shape and upload checks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api.parsers import drain
from registry.artifacts.uploads import received_files
from registry.errors import InvalidInput, UploadTooLarge

FILTER_PARAM = OpenApiParameter(
    "filter", str, description="Search filter, e.g. name LIKE 'churn%' AND tags.team = 'ml'"
)
WORDS_PARAM = OpenApiParameter(
    "q", str, description="Plain words, each of which must appear (case-insensitive) in the name, the description or "
                          "a tag value, e.g. `wine quality`; combines with `filter`"
)
PAGE_PARAMS = [
    OpenApiParameter("max_results", int, description="Page size, 1..1000 (default 100)"),
    OpenApiParameter("cursor", str, description="Opaque cursor from the previous page's next_cursor"),
]


class UploadApi(APIView):
    """Base for the views that take file bodies: whatever refuses a request (authentication, a missing model, a
    limit) first reads what is left of its body, bounded, so that the client receives the answer."""

    def handle_exception(self, exc: Exception) -> Response:
        drain(self.request)
        return super().handle_exception(exc)


def valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Return `data` validated by `serializer_class`; a 400 with the serializer's errors otherwise."""
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def page(results: list[Any], next_cursor: str | None) -> dict[str, Any]:
    """Return one page of results as list endpoints answer it."""
    return {"results": results, "next_cursor": next_cursor}


def declared_length(request: Request) -> int:
    """Return the body length the request declares (0 without one); 400 for a Content-Length that is no number."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("Invalid Content-Length.")
    if length < 0:
        raise InvalidInput("Invalid Content-Length.")
    return length


def check_upload_length(request: Request) -> None:
    """Refuse a body whose declared length is over the upload limit, before reading any of it."""
    # Multipart bodies carry boundaries and form fields too: allow a little framing on top of the limit.
    if declared_length(request) > settings.MAX_UPLOAD_BYTES + 1024 * 1024:
        raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")


def uploaded_files(request: Request) -> list[tuple[str, Any]]:
    """Return (path, SpooledUpload) pairs from multipart `file` parts, paths from `path` fields or file names.

    A body that does not parse, ends early or is over the limit is refused with every spooled file removed.
    """
    check_upload_length(request)
    files = received_files(request, "file")
    paths = request.data.getlist("path") if hasattr(request.data, "getlist") else []
    if paths and len(paths) != len(files):
        for f in files:
            f.close()
        raise InvalidInput("Give one 'path' per 'file' part, or none to use the file names.")
    return [(paths[i] if paths else f.name, f.spooled) for i, f in enumerate(files)]
