"""Validation of names, aliases, semantic versions, tags and provenance payloads shared by every interface."""

from __future__ import annotations

import itertools
import json
import math
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Any

from confusable_homoglyphs.confusables import confusables_data

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
KEY = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,250}$")
# C0 controls (NUL included), DEL and C1 controls: PostgreSQL cannot store NUL in text, and none of them belongs
# in a name or a value a person reads. Multi-line text keeps its ordinary whitespace (tab, line feed, return).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_NOT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
BIGINT_MAX = 2**63 - 1  # the largest integer a BigIntegerField holds on PostgreSQL and SQLite
INTEGER = re.compile(r"[-+]?[0-9]+")  # ASCII digits only: int() also takes '٣' (and str.isdigit() takes '³')
VERSION_NUMBER = re.compile(r"[0-9]+")


def model_name(value: Any) -> str:
    """Return a valid model name, NFKC-normalised (fullwidth and compatibility letters become plain), or raise
    InvalidInput. A JSON number is not a name."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Model name is required and must be a string.")
    value = unicodedata.normalize("NFKC", value)
    if value != value.strip() or not MODEL_NAME.fullmatch(value):
        raise InvalidInput(
            "Model name must be 1-256 characters of letters, digits, '_', '-', '.' or spaces, "
            "starting with a letter, digit or '_'."
        )
    return value


@cache
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype in Unicode's confusables.txt (UTS #39), from confusable_homoglyphs'
    data. That data lists the confusable pairs both ways; every group is a star around its prototype (a source
    lists only its prototype, a prototype lists all its sources), so a character listing exactly one other
    that lists several (or is a sequence) is a source. A lone pair maps both ways to the smaller of the two."""

    def plain(s: str) -> str:
        return s.replace("\u200e", "").replace("\u200f", "")  # the data wraps right-to-left glyphs in marks

    data = {plain(k): [plain(h["c"]) for h in v] for k, v in confusables_data.items()}
    out: dict[str, str] = {}
    for char, others in data.items():
        if len(char) != 1 or len(others) != 1:
            continue
        other = others[0]
        if len(other) > 1 or len(data.get(other, ())) > 1:
            out[char] = other
        elif other < char:
            out[char] = other
    return out


def name_skeletons(value: str) -> tuple[str, str]:
    """Return the forms two names share when a reader could take one for the other: NFKC, each character replaced
    by its confusable prototype (Cyrillic i and Latin i, fullwidth F and F, 'rn' and 'm' ...) and case folded,
    once folding first (case variants meet) and once mapping first (capital I meets l, as UTS #39 has it)."""
    prototypes = _prototypes()

    def mapped(text: str) -> str:
        return "".join(prototypes.get(ch, ch) for ch in unicodedata.normalize("NFKC", text))

    plain = unicodedata.normalize("NFKC", value)
    return mapped(plain.casefold()), mapped(mapped(plain).casefold())


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
        out[key] = finite(raw, f"Metric {key!r}")
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
        out[key] = text(raw, f"Param {key!r}", 6000, scalars=True)
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
    return json_data(value, "Signature")


def environment(value: Any) -> list[str]:
    """Return requirements as a list of lines (a newline-separated string is split)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 500 for v in value):
        raise InvalidInput("Environment must be a list of requirement strings.")
    return [text(v, "Requirement", 500, multiline=False) for v in value]


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
        out.append({"name": text(item["name"], "Dataset name", 256, multiline=False),
                    "uri": text(item.get("uri") or "", "Dataset uri", 2048, scalars=True, multiline=False),
                    "digest": text(item.get("digest") or "", "Dataset digest", 128, scalars=True, multiline=False),
                    "role": role})
    return out


def text(value: Any, field: str, max_length: int, *, scalars: bool = False, multiline: bool = True) -> str:
    """Return a string of at most `max_length` characters (None is empty) with no control character, or raise
    InvalidInput naming `field`.

    The one text rule of every service. With `scalars`, a number or boolean is taken as its text, as MLflow clients
    and tag-setting forms send them; anything else that is not a string is refused. `multiline` text may hold
    tabs and line breaks; other text (names, ids) holds no control character at all.
    """
    if value is None:
        return ""
    if scalars and isinstance(value, (int, float, bool)):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters.")
    return no_controls(value, field, multiline=multiline)


def no_controls(value: str, field: str, *, multiline: bool = True) -> str:
    """Return `value` unless it holds a control character (NUL, other C0 controls, DEL, C1); `multiline` allows
    tab, line feed and carriage return."""
    bad = (CONTROL_NOT_WHITESPACE if multiline else CONTROL).search(value)
    if bad:
        raise InvalidInput(f"{field} must not contain control characters (found U+{ord(bad.group()):04X} at "
                           f"position {bad.start()}).")
    return value


def json_data(value: Any, field: str) -> Any:
    """Return a JSON value (object, list, scalars) unless one of its strings or keys holds a control character
    other than whitespace (PostgreSQL's jsonb refuses NUL) or one of its numbers is not finite (JSON has no NaN)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            no_controls(item, field)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{field} must not contain NaN or infinite numbers.")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def finite(value: Any, field: str) -> float:
    """Return `value` as a finite float (booleans are not numbers), or raise InvalidInput naming `field`."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{field} must be a number, not {str(value)[:50]!r}.")
    if not math.isfinite(number):
        raise InvalidInput(f"{field} must be a finite number.")
    return number


def integer(value: Any, field: str, *, low: int = -BIGINT_MAX - 1, high: int = BIGINT_MAX) -> int:
    """Return `value` (an integer, an integral float or a string of ASCII digits) as an int within [low, high]
    (by default what a 64-bit database column holds), or raise InvalidInput naming `field`."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be an integer.")
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    elif isinstance(value, str) and INTEGER.fullmatch(value.strip()) and len(value) <= 40:
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, not {str(value)[:50]!r}.")
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}.")
    return value


def version_number(value: Any) -> int:
    """Return a version number (a positive integer, or its ASCII digits) or raise InvalidInput."""
    if isinstance(value, str) and not VERSION_NUMBER.fullmatch(value):
        raise InvalidInput(f"Version must be a positive integer, not {value[:50]!r}.")
    return integer(value, "Version", low=1)


# ------------------------------------------------------------------------------------------ JSON text

# Far beyond any document the APIs take (a signature, a dataset list, a batch of metrics), far below Python's
# recursion limit (about 1000 frames, fewer when the parse starts deep in a request).
MAX_JSON_DEPTH = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """Return how deep `text`'s arrays and objects nest (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    # All in C: one step per bracket, a running sum, its maximum.
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)))


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Return whether `text` nests arrays or objects deeper than `limit` (cheap when it has few brackets)."""
    return text.count("[") + text.count("{") > limit and json_depth(text) > limit


def json_loads(text: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document that arrived as text (a form field); ValueError when malformed or nested too deep."""
    if too_deep(text, limit):
        raise ValueError(f"arrays and objects nest deeper than {limit} levels")
    return json.loads(text)
