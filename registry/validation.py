"""Validation of names, aliases, semantic versions, tags and provenance payloads shared by every interface."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from registry.errors import InvalidInput
from registry.models import DatasetRole, Stage

MODEL_NAME = re.compile(r"^[\w][\w.\- ]{0,255}$")
ALIAS_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,250}$")


def model_name(value: Any) -> str:
    """Return a valid model name or raise InvalidInput."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Model name is required.")
    if value != value.strip() or not MODEL_NAME.fullmatch(value):
        raise InvalidInput(
            "Model name must be 1-256 characters of letters, digits, '_', '-', '.' or spaces, "
            "starting with a letter, digit or '_'."
        )
    return value


def alias_name(value: Any) -> str:
    """Return a valid, non-reserved alias name or raise InvalidInput."""
    if not isinstance(value, str) or not ALIAS_NAME.fullmatch(value):
        raise InvalidInput("Alias must be 1-255 characters of letters, digits, '_' or '-'.")
    if RESERVED_ALIAS.fullmatch(value):
        raise InvalidInput(f"Alias {value!r} is reserved ('latest' and 'v<number>' name versions).")
    return value


def semver(value: Any) -> str:
    """Return a valid semantic version (or '') or raise InvalidInput."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not SEMVER.fullmatch(value):
        raise InvalidInput(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build]).")
    return value


def semver_next(current: str | None, part: str) -> str:
    """Return `current` bumped by `part` (major, minor or patch); from nothing, the first such release."""
    if part not in {"major", "minor", "patch"}:
        raise InvalidInput("Bump must be one of major, minor, patch.")
    if not current:
        return {"major": "1.0.0", "minor": "0.1.0", "patch": "0.0.1"}[part]
    match = SEMVER.match(current)
    if not match:
        raise InvalidInput(f"{current!r} is not a semantic version.")
    major, minor, patch = (int(match.group(i)) for i in (1, 2, 3))
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def semver_key(value: str) -> tuple[int, int, int, int, str]:
    """Sort key for semantic versions: a release sorts after its pre-releases."""
    match = SEMVER.fullmatch(value)
    if not match:
        raise InvalidInput(f"{value!r} is not a semantic version.")
    pre = match.group(4) or ""
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), 0 if pre else 1, pre


def highest_semver(values: Iterable[str]) -> str | None:
    """Return the highest of some semantic versions, or None."""
    return max(values, key=semver_key, default=None)


def stage(value: Any) -> str:
    """Return a canonical stage name, accepting any case, or raise InvalidInput."""
    if isinstance(value, str):
        for choice in Stage.values:
            if value.lower() == choice.lower():
                return choice
    raise InvalidInput(f"Unknown stage {value!r}; use one of {', '.join(Stage.values)}.")


def key(value: Any, field: str = "Key") -> str:
    """Return a valid key (tags, params, metrics): 1-250 characters, none of them a control character."""
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise InvalidInput(f"{field} must be 1-250 printable characters.")
    return value


def tag(key_: Any, value: Any) -> tuple[str, str]:
    """Return a valid (key, value) tag pair or raise InvalidInput."""
    key_ = key(key_, "Tag key")
    return key_, text(value, f"Tag {key_!r} value", 5000, scalars=True)


def tags(value: Any) -> dict[str, str]:
    """Accept a mapping or a list of {key, value} objects; return a dict of valid tags."""
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        try:
            items = [(item["key"], item.get("value", "")) for item in value]
        except (TypeError, KeyError):
            raise InvalidInput("Tags must be an object or a list of {key, value}.")
    else:
        raise InvalidInput("Tags must be an object or a list of {key, value}.")
    return dict(tag(k, v) for k, v in items)


def metrics(value: Any) -> dict[str, float]:
    """Return a mapping of metric name to finite float, or raise InvalidInput."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("Metrics must be an object mapping names to numbers.")
    out: dict[str, float] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not KEY.fullmatch(key) or "__" in key:
            raise InvalidInput(f"Invalid metric name {key!r}.")
        if isinstance(raw, bool):
            raise InvalidInput(f"Metric {key!r} must be a number.")
        try:
            num = float(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"Metric {key!r} must be a number, not {raw!r}.")
        if not math.isfinite(num):
            raise InvalidInput(f"Metric {key!r} must be finite.")
        out[key] = num
    return out


def params(value: Any) -> dict[str, str]:
    """Return a mapping of parameter name to string value, or raise InvalidInput."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("Params must be an object mapping names to values.")
    out: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not KEY.fullmatch(key) or "__" in key:
            raise InvalidInput(f"Invalid param name {key!r}.")
        if isinstance(raw, (dict, list)):
            raise InvalidInput(f"Param {key!r} must be a scalar value.")
        text = "" if raw is None else str(raw)
        if len(text) > 6000:
            raise InvalidInput(f"Param {key!r} is longer than 6000 characters.")
        out[key] = text
    return out


def signature(value: Any) -> dict[str, Any]:
    """Return an input/output signature object ({"inputs": [...], "outputs": [...]}) or raise InvalidInput."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not set(value) <= {"inputs", "outputs", "params"}:
        raise InvalidInput("Signature must be an object with 'inputs' and/or 'outputs' lists.")
    for part in ("inputs", "outputs"):
        cols = value.get(part, [])
        if not isinstance(cols, list) or not all(isinstance(c, dict) for c in cols):
            raise InvalidInput(f"Signature {part} must be a list of column objects (name, type).")
    return value


def environment(value: Any) -> list[str]:
    """Return requirements as a list of lines (a newline-separated string is split)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 500 for v in value):
        raise InvalidInput("Environment must be a list of requirement strings.")
    return value


def datasets(value: Any) -> list[dict[str, str]]:
    """Return a list of {name, uri, digest, role} datasets or raise InvalidInput."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise InvalidInput("Datasets must be a list of {name, uri, digest, role}.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise InvalidInput("Each dataset needs a name.")
        role = item.get("role") or DatasetRole.TRAIN
        if role not in DatasetRole.values:
            raise InvalidInput(f"Dataset role must be one of {', '.join(DatasetRole.values)}.")
        uri, digest = str(item.get("uri") or ""), str(item.get("digest") or "")
        if len(uri) > 2048 or len(digest) > 128 or len(item["name"]) > 256:
            raise InvalidInput("Dataset name, uri or digest is too long.")
        out.append({"name": item["name"], "uri": uri, "digest": digest, "role": role})
    return out


def text(value: Any, field: str, max_length: int, *, scalars: bool = False) -> str:
    """Return a string of at most `max_length` characters (None is empty) or raise InvalidInput naming `field`.

    The one text rule of every service. With `scalars`, a number or boolean is taken as its text, as MLflow clients
    and tag-setting forms send them; anything else that is not a string is refused.
    """
    if value is None:
        return ""
    if scalars and isinstance(value, (int, float, bool)):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters.")
    return value
