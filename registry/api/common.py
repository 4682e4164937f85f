"""What the native API views share: schema parameters, input validation, the page shape and upload checks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from registry.errors import InvalidInput, UploadTooLarge

FILTER_PARAM = OpenApiParameter(
    "filter", str, description="Search filter, e.g. name LIKE 'churn%' AND tags.team = 'ml'"
)
PAGE_PARAMS = [
    OpenApiParameter("max_results", int, description="Page size, 1..1000 (default 100)"),
    OpenApiParameter("cursor", str, description="Opaque cursor from the previous page's next_cursor"),
]


def valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Return `data` validated by `serializer_class`; a 400 with the serializer's errors otherwise."""
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def page(results: list[Any], next_cursor: str | None) -> dict[str, Any]:
    """Return one page of results as list endpoints answer it."""
    return {"results": results, "next_cursor": next_cursor}


def check_upload_length(request: Request) -> None:
    """Refuse a body whose declared length is over the upload limit, before reading any of it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("Invalid Content-Length.")
    # Multipart bodies carry boundaries and form fields too: allow a little framing on top of the limit.
    if length > settings.MAX_UPLOAD_BYTES + 1024 * 1024:
        raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")


def uploaded_files(request: Request) -> list[tuple[str, Any]]:
    """Return (path, SpooledUpload) pairs from multipart `file` parts, paths from `path` fields or file names."""
    check_upload_length(request)
    files = request.FILES.getlist("file")
    if getattr(request, "stratum_upload_too_large", False):
        raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")
    paths = request.data.getlist("path") if hasattr(request.data, "getlist") else []
    if paths and len(paths) != len(files):
        raise InvalidInput("Give one 'path' per 'file' part, or none to use the file names.")
    out = []
    for i, f in enumerate(files):
        spooled = getattr(f, "spooled", None)
        if spooled is None:  # pragma: no cover - only if the upload handler setting is changed
            raise InvalidInput("Uploads must go through Stratum's upload handler.")
        out.append((paths[i] if paths else f.name, spooled))
    return out
