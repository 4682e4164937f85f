"""Native API for a version's files: list, multipart upload, and one file's download (ETag, Range), PUT and delete."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse, UnreadablePostError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from registry import selectors, services
from registry.api import serializers as s
from registry.api.common import UploadApi, check_upload_length, declared_length, uploaded_files
from registry.api.errors import error_body
from registry.artifacts.formats import CONTENT_TYPES, content_type_for
from registry.artifacts.storage import SpooledUpload, blob_open, direct_download_url, iter_range, spool_stream
from registry.artifacts.uploads import MalformedUpload
from registry.errors import InvalidInput


class RawBodyParser(BaseParser):
    """Accept a raw body; views stream it from the request themselves."""

    media_type = "application/octet-stream"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None
              ) -> Any:  # pragma: no cover - views never call it
        return stream


def _spool_body(request: Request) -> SpooledUpload:
    """Spool the raw body; refuse one that ends before its declared length (the client went away mid-body)."""
    declared = declared_length(request)
    try:
        upload = spool_stream(request)  # DRF passes read() through to the HttpRequest: the body streams
    except UnreadablePostError:  # spool_stream removed what it wrote
        raise MalformedUpload("The request body ended before it was complete.") from None
    if declared and upload.size != declared:
        upload.discard()
        raise MalformedUpload(f"The request body ended after {upload.size} of the {declared} bytes it declared.")
    return upload


class ArtifactListApi(UploadApi):
    """List a version's files, or add files with a multipart upload."""

    @extend_schema(operation_id="models_versions_artifacts_list", responses=s.ArtifactListOutput)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response({"files": s.ArtifactOutput(selectors.artifact_list(version=version), many=True).data})

    @extend_schema(request={"multipart/form-data": inline_serializer(
        "ArtifactUpload", {"file": serializers.ListField(child=serializers.FileField()),
                           "path": serializers.ListField(child=serializers.CharField(), required=False)})},
        responses={201: s.ArtifactListOutput})
    def post(self, request: Request, name: str, ref: str) -> Response:
        if not request.content_type.startswith("multipart/"):
            raise InvalidInput("Upload files as multipart/form-data 'file' parts (or PUT one raw file to its path).")
        files = uploaded_files(request)
        try:
            if not files:
                raise InvalidInput("No 'file' part in the upload.")
            model = selectors.model_get(actor=request.user, name=name)
            version = selectors.version_get(model=model, number=ref)
        except BaseException:
            for _, upload in files:
                upload.discard()
            raise
        stored = []
        for i, (path, upload) in enumerate(files):
            try:
                stored.append(services.artifact_add(version=version, actor=request.user, path=path, upload=upload))
            except BaseException:
                for _, rest in files[i + 1:]:
                    rest.discard()
                raise
        return Response({"files": s.ArtifactOutput(stored, many=True).data}, status=status.HTTP_201_CREATED)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# What a download is served as (the Content-Type follows the detected format), without parameters such as charset.
DOWNLOAD_MEDIA_TYPES = sorted({t.split(";")[0] for t in CONTENT_TYPES.values()} | {"application/octet-stream"})


class ArtifactFileApi(UploadApi):
    """Download one file (streamed, ETag = sha256, single Range), PUT one raw file to a path, or delete it."""

    parser_classes = [RawBodyParser]

    @extend_schema(responses={(code, media_type): OpenApiTypes.BINARY for code in (200, 206)
                              for media_type in DOWNLOAD_MEDIA_TYPES})
    def get(self, request: Request, name: str, ref: str, path: str) -> HttpResponse:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        artifact = selectors.artifact_download_get(version=version, path=path)  # refuses quarantined bytes
        etag = f'"{artifact.blob_id}"'
        common = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=0, must-revalidate"}
        if request.META.get("HTTP_IF_NONE_MATCH") == etag:
            response = HttpResponse(status=304)
            for k, v in common.items():
                response[k] = v
            return response
        size = artifact.size
        start, length, code = 0, size, 200
        range_header = request.META.get("HTTP_RANGE", "")
        if range_header and request.META.get("HTTP_IF_RANGE", etag) == etag:
            match = _RANGE.match(range_header.strip())
            first = last = None
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    first = int(match.group(1))
                    last = int(match.group(2)) if match.group(2) else size - 1
                else:
                    first, last = max(size - int(match.group(2)), 0), size - 1
            if first is None or first >= size or last < first:
                response = Response(error_body("INVALID_RANGE", f"The range {range_header!r} is not within the "
                                                f"file's {size} bytes."), status=416)
                response["Content-Range"] = f"bytes */{size}"
                return response
            last = min(last, size - 1)
            start, length, code = first, last - first + 1, 206
        filename = path.rsplit("/", 1)[-1]
        direct = direct_download_url(artifact.blob, filename=filename, content_type=content_type_for(artifact.format))
        if direct is not None:  # the client fetches the bytes (and its Range) from the object store itself
            return HttpResponseRedirect(direct, headers={"Cache-Control": "no-store", "ETag": etag})
        response = StreamingHttpResponse(iter_range(blob_open(artifact.blob, start=start), start, length),
                                         status=code, content_type=content_type_for(artifact.format))
        response["Content-Length"] = str(length)
        if code == 206:
            response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        response["Content-Disposition"] = f"attachment; filename=\"{filename}\""
        for k, v in common.items():
            response[k] = v
        return response

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, responses={201: s.ArtifactOutput})
    def put(self, request: Request, name: str, ref: str, path: str) -> Response:
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in ("application/octet-stream", ""):
            from rest_framework.exceptions import UnsupportedMediaType

            raise UnsupportedMediaType(content_type, detail="Send the file's raw bytes as application/octet-stream.")
        check_upload_length(request)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        upload = _spool_body(request)
        artifact = services.artifact_add(version=version, actor=request.user, path=path, upload=upload)
        return Response(s.ArtifactOutput(artifact).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, ref: str, path: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        services.artifact_delete(version=version, actor=request.user, path=path)
        return Response(status=status.HTTP_204_NO_CONTENT)
