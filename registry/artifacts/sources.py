"""Validation of model-version sources: an allowlist of URI forms, checked as text; nothing is read or fetched.

MLflow's own check was bypassed again and again (CVE-2023-1177 and its successors: `file:` URIs, `..` hidden
in a query, fragment or `;params`, percent- or doubly-encoded dots, a prompt tag that skipped the check).
Stratum accepts only these forms and stores exactly the string it validated:

    models:/<name>/<version|latest|stage>   models:/<name>@<alias>   models:/m-<logged model id>
    runs:/<run id>[/<relative path>]        mlflow-artifacts:/<relative path>
    <a prefix listed in STRATUM_ALLOWED_SOURCE_PREFIXES>[<rest>]   (object stores, e.g. s3://bucket/)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from registry.errors import InvalidInput

MAX_SOURCE_LENGTH = 2048
PROMPT_TAG_PREFIX = "mlflow.prompt."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEGMENT = re.compile(r"^[\w.\- ]+$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_LOGGED_MODEL = re.compile(r"^m-[0-9a-f]{32}$")
_MODEL_NAME = re.compile(r"^[\w][\w.\- ]{0,255}$")
_VERSION_REF = re.compile(r"^(\d{1,9}|latest|None|Staging|Production|Archived)$")
_ALIAS = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_OBJECT_STORE_REST = re.compile(r"^[A-Za-z0-9._\-/=+:@!$*,~ ]*$")


def _invalid(source: str, why: str) -> InvalidInput:
    shown = source if len(source) <= 200 else source[:200] + "…"
    return InvalidInput(f"Invalid model version source {shown!r}: {why}")


def _relative_path(source: str, path: str, *, allow_empty: bool) -> None:
    """Check a relative artifact path inside a source: plain segments only, no dot segments or empties."""
    path = path.rstrip("/")
    if not path:
        if allow_empty:
            return
        raise _invalid(source, "a path is required after the scheme.")
    if path.startswith("/"):
        raise _invalid(source, "a host or absolute path is not allowed after the scheme.")
    for segment in path.split("/"):
        if segment in ("", ".") or not _SEGMENT.fullmatch(segment):
            raise _invalid(source, f"path segment {segment!r} is not allowed.")


def allowed_prefixes() -> list[str]:
    """Return the configured object-store prefixes a source may start with (URL schemes only, never file:)."""
    configured = getattr(settings, "STRATUM_ALLOWED_SOURCE_PREFIXES", [])
    return [p for p in configured if "://" in p and not p.lower().startswith(("file:", "local:"))]


def validate_source(raw: Any) -> str:
    """Return `raw` unchanged if it is an allowed source URI, else raise InvalidInput (INVALID_PARAMETER_VALUE)."""
    if not isinstance(raw, str) or not raw:
        raise InvalidInput("Model version source must be a non-empty string.")
    source = raw
    if len(source) > MAX_SOURCE_LENGTH:
        raise _invalid(source, f"longer than {MAX_SOURCE_LENGTH} characters.")
    if "\x00" in source or _CONTROL.search(source):
        raise _invalid(source, "control characters and NUL bytes are not allowed.")
    if "\\" in source:
        raise _invalid(source, "backslashes are not allowed.")
    if "%" in source:
        raise _invalid(source, "percent-encoded characters are not allowed (write the plain characters).")
    if ".." in source:
        raise _invalid(source, "'..' is not allowed anywhere in a source.")
    if source != source.strip():
        raise _invalid(source, "leading or trailing whitespace is not allowed.")
    if source.startswith("models:/"):
        _check_models_uri(source)
        return source
    if source.startswith("runs:/"):
        rest = source[len("runs:/"):]
        run_id, _, path = rest.partition("/")
        if not _RUN_ID.fullmatch(run_id):
            raise _invalid(source, "expected runs:/<run id>/<path>.")
        _check_plain(source, path)
        _relative_path(source, path, allow_empty=True)
        return source
    if source.startswith("mlflow-artifacts:/"):
        path = source[len("mlflow-artifacts:/"):]
        _check_plain(source, path)
        _relative_path(source, path, allow_empty=False)
        return source
    for prefix in allowed_prefixes():
        if source.startswith(prefix) and len(source) > len(prefix):
            rest = source[len(prefix):]
            if not _OBJECT_STORE_REST.fullmatch(rest) or "//" in rest:
                raise _invalid(source, "only plain object keys are allowed (no query, fragment or params).")
            return source
    allowed = ", ".join(["models:/", "runs:/", "mlflow-artifacts:/", *allowed_prefixes()])
    raise _invalid(source, f"local paths and other schemes are refused; a source must start with one of {allowed}.")


def _check_plain(source: str, path: str) -> None:
    if any(ch in path for ch in "?#;"):
        raise _invalid(source, "query strings, fragments and ';' parameters are not allowed.")


def _check_models_uri(source: str) -> None:
    rest = source[len("models:/"):]
    _check_plain(source, rest)
    if rest.startswith("/"):
        raise _invalid(source, "a host is not allowed in a models:/ URI.")
    if _LOGGED_MODEL.fullmatch(rest):
        return
    if "@" in rest and "/" not in rest:
        name, _, alias = rest.partition("@")
        if _MODEL_NAME.fullmatch(name) and _ALIAS.fullmatch(alias):
            return
        raise _invalid(source, "expected models:/<name>@<alias>.")
    name, _, ref = rest.partition("/")
    if _MODEL_NAME.fullmatch(name) and _VERSION_REF.fullmatch(ref):
        return
    raise _invalid(source, "expected models:/<name>/<version>, models:/<name>@<alias> or models:/m-<id>.")


def check_tags(tags: Iterable[str]) -> None:
    """Refuse tag keys that would make MLflow treat a model as a prompt (its source-check bypass)."""
    for key in tags:
        if isinstance(key, str) and key.lower().startswith(PROMPT_TAG_PREFIX):
            raise InvalidInput(f"Tag {key!r} is reserved: Stratum does not store prompts.")
