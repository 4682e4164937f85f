"""The search filter language compiled to Django Q objects: what each field of a model or version filter means.

The grammar lives in search.parser; here each comparison of its syntax tree becomes a lookup. Callers that search
something else (experiments, logged models) pass their own `compare` to compile_filter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from registry.search.parser import NULL_OPS, BoolOp, FilterError, Node, parse
from registry.validation import BIGINT_MAX

Compare = Callable[[str, str, Any], Q]


_SAFE_JSON_KEY = re.compile(r"^[A-Za-z0-9_.\-/: ]{1,250}$")


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
        return key[1:-1]
    return key


def json_key(key: str) -> str:
    """Return a metric/param name safe to use as a JSON key lookup, or raise FilterError."""
    key = _unquote_key(key)
    if not _SAFE_JSON_KEY.match(key) or "__" in key:
        raise FilterError(f"Invalid metric, param or tag name {key!r} in filter.")
    return key


def _like_regex(pattern: str) -> str:
    out = ["^"]
    for ch in pattern:
        out.append("[\\s\\S]*" if ch == "%" else "[\\s\\S]" if ch == "_" else re.escape(ch))
    out.append("$")
    return "".join(out)


def _prefix_lookup(field: str, prefix: str) -> Q:
    """A case-sensitive `LIKE 'prefix%'`. PostgreSQL's LIKE is case-sensitive already; SQLite's is not, but its
    default BINARY collation orders text by code point, so the prefix is the half-open range [prefix, prefix+1)
    (an index range scan instead of a Python regex per row)."""
    if connection.vendor != "sqlite":
        return Q(**{f"{field}__startswith": prefix})
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not text: the next character is U+E000
        following = 0xE000
    if following > 0x10FFFF:
        return Q(**{f"{field}__regex": _like_regex(prefix + "%")})
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix[:-1] + chr(following)})


def string_lookup(field: str, op: str, value: Any) -> Q:
    """Compile a comparison on a text column."""
    if op in {"LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"}:
        if not isinstance(value, str):
            raise FilterError(f"{op} needs a quoted pattern.")
        insensitive = "ILIKE" in op
        inner = value.strip("%")
        # Shortcuts only for ILIKE: SQLite's LIKE (behind startswith/contains) ignores case, so LIKE uses a regex.
        if insensitive and "_" not in value and "%" not in inner:
            if value.startswith("%") and value.endswith("%") and len(value) > 1:
                lookup = "icontains" if insensitive else "contains"
            elif value.endswith("%"):
                lookup = "istartswith" if insensitive else "startswith"
            elif value.startswith("%"):
                lookup = "iendswith" if insensitive else "endswith"
            else:
                lookup = "iexact" if insensitive else "exact"
            q = Q(**{f"{field}__{lookup}": inner})
        elif not insensitive and inner and value == inner + "%" and "_" not in inner:
            q = _prefix_lookup(field, inner)
        else:
            q = Q(**{f"{field}__{'iregex' if insensitive else 'regex'}": _like_regex(value)})
        return ~q if op.startswith("NOT") else q
    if op in {"IN", "NOT IN"}:
        q = Q(**{f"{field}__in": [str(v) for v in value]})
        return ~q if op == "NOT IN" else q
    lookups = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
    q = Q(**{f"{field}__{lookups[op]}": str(value) if not isinstance(value, str) else value})
    return ~q if op == "!=" else q


def _number(value: Any, label: str) -> float | int:
    """Return a filter value as a finite number (an int when it is integral and a database integer can hold
    it), or raise FilterError: NaN and infinities ('1e400' included) compare with nothing."""
    try:
        num = float(value)
    except (TypeError, ValueError, OverflowError):
        raise FilterError(f"{label} must be compared with a number, not {str(value)[:50]!r}.")
    if not math.isfinite(num):
        raise FilterError(f"{label} must be compared with a finite number, not {str(value)[:50]!r}.")
    if num.is_integer() and abs(num) <= BIGINT_MAX:
        return int(value) if isinstance(value, int) else int(num)
    return num


def _number_lookup(field: str, op: str, value: Any, label: str) -> Q:
    """Compile a comparison on a numeric column."""
    if op in {"IN", "NOT IN"}:
        nums = [_number(v, f"{label} IN") for v in value]
        q = Q(**{f"{field}__in": nums})
        return ~q if op == "NOT IN" else q
    if op not in {"=", "!=", "<", "<=", ">", ">="}:
        raise FilterError(f"{label} supports =, !=, <, <=, >, >= and IN, not {op}.")
    num = _number(value, label)
    lookups = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
    q = Q(**{f"{field}__{lookups[op]}": num})
    return ~q if op == "!=" else q


def _tag_q(tag_model, owner_field: str, key: str, op: str, value: Any) -> Q:
    """Match owners having a tag `key` whose value satisfies `op`; `!=`/NOT match owners without the tag too."""
    negate = op == "!=" or op.startswith("NOT")
    positive_op = {"!=": "=", "NOT LIKE": "LIKE", "NOT ILIKE": "ILIKE", "NOT IN": "IN"}.get(op, op)
    tags = tag_model.objects.filter(**{owner_field: OuterRef("pk")}, key=key).filter(
        string_lookup("value", positive_op, value)
    )
    return ~Q(Exists(tags)) if negate else Q(Exists(tags))


def _refuse_null_ops(what: str, field: str, op: str) -> None:
    """MLflow's registry searches have no IS [NOT] NULL (its server fails with 500); Stratum says so with a 400."""
    if op in NULL_OPS:
        raise FilterError(f"{op} is not supported in a {what} filter ('{field} {op}'); it is supported for tags "
                          "and params in run search and for tags in experiment search.")


def compile_model_filter(text: str | None) -> Q:
    """Compile a registered-model search filter."""
    from registry.models import ModelTag, ModelVersion

    def cmp(field: str, op: str, value: Any) -> Q:
        _refuse_null_ops("registered model", field, op)
        prefix, _, rest = field.partition(".")
        prefix_l = prefix.lower()
        if not rest and prefix_l == "name":
            return string_lookup("name", op, value)
        if not rest and prefix_l == "description":
            return string_lookup("description", op, value)
        if prefix_l in {"tag", "tags"} and rest:
            return _tag_q(ModelTag, "model", _unquote_key(rest), op, value)
        if prefix_l in {"metric", "metrics"} and rest:
            versions = ModelVersion.objects.filter(model=OuterRef("pk")).filter(
                _number_lookup(f"metrics__{json_key(rest)}", op if op != "!=" else "=", value, field)
            )
            return ~Q(Exists(versions)) if op == "!=" else Q(Exists(versions))
        raise FilterError(
            f"Unknown field {field!r} in model filter; use name, description, tags.<key> or metrics.<name>."
        )

    return compile_filter(text, cmp)


def compile_version_filter(text: str | None) -> Q:
    """Compile a model-version search filter."""
    from registry.models import VersionTag

    def cmp(field: str, op: str, value: Any) -> Q:
        _refuse_null_ops("model version", field, op)
        prefix, _, rest = field.partition(".")
        prefix_l = prefix.lower()
        if not rest:
            if prefix_l == "name":
                return string_lookup("model__name", op, value)
            if prefix_l in {"version_number", "version"}:
                return _number_lookup("number", op, value, field)
            if prefix_l == "run_id":
                return string_lookup("run_id", op, value)
            if prefix_l in {"source_path", "source"}:
                return string_lookup("source_uri", op, value)
            if prefix_l in {"stage", "current_stage"}:
                return string_lookup("stage", op, value)
            if prefix_l == "semver":
                return string_lookup("semver", op, value)
        if prefix_l in {"tag", "tags"} and rest:
            return _tag_q(VersionTag, "version", _unquote_key(rest), op, value)
        if prefix_l in {"metric", "metrics"} and rest:
            key = json_key(rest)
            q = _number_lookup(f"metrics__{key}", op, value, field)
            return q & Q(**{"metrics__has_key": key}) if op == "!=" else q
        if prefix_l in {"param", "params"} and rest:
            return string_lookup(f"params__{json_key(rest)}", op, value)
        raise FilterError(
            f"Unknown field {field!r} in version filter; use name, version_number, run_id, source_path, stage, "
            "tags.<key>, metrics.<name> or params.<name>."
        )

    return compile_filter(text, cmp)


def compile_filter(text: str | None, compare: Compare) -> Q:
    """Compile a filter string to a Q, turning each `field op value` into a Q with `compare(field, op, value)`."""
    node = parse(text)
    return Q() if node is None else _to_q(node, compare)


def _to_q(node: Node, compare: Compare) -> Q:
    """Fold a syntax tree into a Q, combining operands left to right as they were written."""
    if isinstance(node, BoolOp):
        q = _to_q(node.operands[0], compare)
        for operand in node.operands[1:]:
            if node.op == "OR":
                q = q | _to_q(operand, compare)
            else:
                q = q & _to_q(operand, compare)
        return q
    return compare(node.field, node.op, node.value)
