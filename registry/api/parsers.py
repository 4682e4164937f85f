"""Request body parsers for both APIs. JSON is bounded: over the size limit is a 413, nested too deep a 400, both
decided before any parsing, so a hostile body costs one linear scan and never reaches the recursion limit. A body
that ends early (the client went away) is a 400 on JSON and multipart alike, never a 500."""

from __future__ import annotations

import io
from typing import IO, Any

from django.conf import settings
from django.http import UnreadablePostError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser

from registry.artifacts.uploads import HashingUploadHandler
from registry.errors import DomainError
from registry.validation import MAX_JSON_DEPTH, too_deep

# Reading and discarding what a refused client still sends, so that it gets the 413 rather than a reset
# connection, is worth it up to this much; a body larger still is cut off.
DRAIN_BYTES = 64 * 1024 * 1024

ENDED_EARLY = "The request body ended before it was complete."


class BodyTooLarge(DomainError):
    """A request body is over the size the endpoint reads into memory."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


def drain(stream: IO[bytes], length: int = DRAIN_BYTES) -> None:
    """Read and discard what is left of a refused body, at most `length` bytes and DRAIN_BYTES, so that the answer
    reaches the client: a server that closes a socket with unread bytes in it resets the connection, and the
    client, still sending, never reads the answer. A client that stops sending just ends the loop."""
    remaining = min(length, DRAIN_BYTES)
    try:
        while remaining > 0:
            chunk = stream.read(min(remaining, 256 * 1024))
            if not chunk:
                return
            remaining -= len(chunk)
    except OSError:
        return


class BoundedJSONParser(BaseParser):
    """DRF's JSON parser behind a size limit (Django's DATA_UPLOAD_MAX_MEMORY_SIZE) and a nesting limit.

    It streams the body itself (a JSONParser subclass would be handed `request.body`, which Django refuses over the
    limit with a SuspiciousOperation: a 400 page and a logged traceback instead of the API's 413).
    """

    media_type = "application/json"

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        """Return the parsed body; 413 over the size limit, 400 when malformed or nested too deep."""
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:  # pragma: no cover - DRF does not call parsers without a body
            return {}
        request = parser_context.get("request")
        declared = _declared_length(request)
        if limit is not None and declared > limit:
            drain(stream, declared)
            raise BodyTooLarge(f"The JSON body of {declared} bytes is over the limit of {limit} bytes.")
        try:
            body = stream.read() if limit is None else stream.read(limit + 1)
        except UnreadablePostError:
            raise ParseError(ENDED_EARLY)
        if limit is not None and len(body) > limit:
            raise BodyTooLarge(f"The JSON body is over the limit of {limit} bytes.")
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}")
        if too_deep(text):
            raise ParseError(f"JSON parse error - arrays and objects nest deeper than {MAX_JSON_DEPTH} levels.")
        return JSONParser().parse(io.BytesIO(body), media_type, parser_context)


class SpoolingMultiPartParser(MultiPartParser):
    """DRF's multipart parser; a body that ends early is a 400, and the file part being spooled is removed."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        """Return DRF's DataAndFiles; on any failure remove the part being spooled (Django closes the others)."""
        request = (parser_context or {}).get("request")
        try:
            return super().parse(stream, media_type, parser_context)
        except BaseException as exc:
            for handler in request.upload_handlers if request is not None else ():
                if isinstance(handler, HashingUploadHandler):
                    handler.abort()
            if isinstance(exc, UnreadablePostError):
                raise ParseError(ENDED_EARLY) from None
            raise


def _declared_length(request: Any) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0) if request is not None else 0
    except ValueError:
        return 0
