"""Validation of artifact paths: relative, no traversal, no encoded escapes; the result is what is stored."""

from __future__ import annotations

import re
from urllib.parse import unquote

from registry.errors import InvalidInput

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_artifact_path(raw: str) -> str:
    """Return `raw` percent-decoded until stable, or raise InvalidInput if it could escape the version's tree."""
    if not isinstance(raw, str) or raw == "":
        raise InvalidInput("Artifact path must be a non-empty string.")
    path = raw
    for _ in range(10):
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise InvalidInput("Artifact path is not valid UTF-8 once percent-decoded.")
        if decoded == path:
            break
        path = decoded
    else:
        raise InvalidInput("Artifact path is encoded too many times.")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"Artifact path is longer than {MAX_PATH_LENGTH} characters.")
    if "\x00" in path:
        raise InvalidInput("Artifact path must not contain NUL bytes.")
    if _CONTROL.search(path):
        raise InvalidInput("Artifact path must not contain control characters.")
    if "\\" in path:
        raise InvalidInput("Artifact path must use forward slashes only (no backslash).")
    if path.startswith("/") or path.startswith("~"):
        raise InvalidInput("Artifact path must be relative.")
    if _DRIVE.match(path):
        raise InvalidInput("Artifact path must not start with a drive letter.")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput("Artifact path must not contain empty, '.' or '..' segments.")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidInput(f"Artifact path segments must be at most {MAX_SEGMENT_LENGTH} characters.")
    return path
