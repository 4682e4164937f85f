"""The search filter language (MLflow's, plus OR, parentheses and metrics), compiled to Django Q objects.

    name = 'x'   name LIKE 'churn%'   name ILIKE '%Fraud%'   tags.team = 'ml'   tag.`a b` != 'x'
    version_number >= 3   run_id = 'abc'   metrics.auc > 0.9   (a OR b) AND c
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from registry.errors import InvalidInput

MAX_FILTER_LENGTH = 4000


class FilterError(InvalidInput):
    """A filter string that does not parse or names an unknown field."""


_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    | (?P<ident>(?:[A-Za-z_][\w]*)(?:\.(?:`[^`]+`|"[^"]+"|[\w.\-/:]+))?)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT"}


@dataclass
class Token:
    kind: str
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split a filter string into tokens, or raise FilterError pointing at the bad character."""
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            raise FilterError(f"Unexpected character {text[pos:pos + 10]!r} at position {pos} in filter.")
        kind = match.lastgroup
        raw = match.group(kind)
        start = match.start(kind)
        if kind == "string":
            quote = raw[0]
            body = raw[1:-1]
            value: Any = body.replace("''", "'") if quote == "'" else body
            value = re.sub(r"\\(.)", r"\1", value)
        elif kind == "number":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "ident" and raw.upper() in KEYWORDS:
            kind, value = "kw", raw.upper()
        else:
            value = raw
        tokens.append(Token(kind, value, start))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], compile_cmp) -> None:
        self.tokens = tokens
        self.i = 0
        self.compile_cmp = compile_cmp

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("Filter ended unexpectedly.")
        self.i += 1
        return tok

    def parse(self) -> Q:
        q = self.expr()
        if self.peek() is not None:
            tok = self.peek()
            raise FilterError(f"Unexpected {tok.value!r} at position {tok.pos} in filter.")
        return q

    def expr(self) -> Q:
        q = self.term()
        while (tok := self.peek()) and tok.kind == "kw" and tok.value == "OR":
            self.take()
            q = q | self.term()
        return q

    def term(self) -> Q:
        q = self.factor()
        while (tok := self.peek()) and tok.kind == "kw" and tok.value == "AND":
            self.take()
            q = q & self.factor()
        return q

    def factor(self) -> Q:
        tok = self.take()
        if tok.kind == "lparen":
            q = self.expr()
            if self.peek() is None:
                raise FilterError(f"Missing ')' to close '(' at position {tok.pos}.")
            closing = self.take()
            if closing.kind != "rparen":
                raise FilterError(f"Expected ')' at position {closing.pos} in filter.")
            return q
        if tok.kind != "ident":
            raise FilterError(f"Expected a field name at position {tok.pos}, found {tok.value!r}.")
        op_tok = self.take()
        if op_tok.kind == "kw" and op_tok.value == "NOT":
            nxt = self.take()
            if nxt.kind != "kw" or nxt.value not in {"LIKE", "ILIKE", "IN"}:
                raise FilterError(f"Expected LIKE, ILIKE or IN after NOT at position {nxt.pos}.")
            op = f"NOT {nxt.value}"
        elif op_tok.kind == "op" or (op_tok.kind == "kw" and op_tok.value in {"LIKE", "ILIKE", "IN"}):
            op = {"==": "=", "<>": "!="}.get(op_tok.value, op_tok.value)
        else:
            raise FilterError(f"Expected a comparison operator after {tok.value!r} at position {op_tok.pos}.")
        if op.endswith("IN"):
            value = self.value_list()
        else:
            vtok = self.take()
            if vtok.kind not in {"string", "number"}:
                raise FilterError(f"Expected a quoted string or a number at position {vtok.pos}.")
            value = vtok.value
        return self.compile_cmp(tok.value, op, value)

    def value_list(self) -> list[Any]:
        if self.take().kind != "lparen":
            raise FilterError("IN must be followed by a parenthesised list.")
        values = []
        while True:
            vtok = self.take()
            if vtok.kind not in {"string", "number"}:
                raise FilterError(f"Expected a value in the IN list at position {vtok.pos}.")
            values.append(vtok.value)
            sep = self.take()
            if sep.kind == "rparen":
                return values
            if sep.kind != "comma":
                raise FilterError(f"Expected ',' or ')' at position {sep.pos}.")


_SAFE_JSON_KEY = re.compile(r"^[A-Za-z0-9_.\-/: ]{1,250}$")


def _unquote_key(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
        return key[1:-1]
    return key


def _json_key(key: str) -> str:
    """Return a metric/param name safe to use as a JSON key lookup, or raise FilterError."""
    key = _unquote_key(key)
    if not _SAFE_JSON_KEY.match(key) or "__" in key:
        raise FilterError(f"Invalid metric or param name {key!r} in filter.")
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


def _string_lookup(field: str, op: str, value: Any) -> Q:
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


def _number_lookup(field: str, op: str, value: Any, label: str) -> Q:
    """Compile a comparison on a numeric column."""
    if op in {"IN", "NOT IN"}:
        try:
            nums = [float(v) for v in value]
        except (TypeError, ValueError):
            raise FilterError(f"{label} IN needs numbers.")
        q = Q(**{f"{field}__in": nums})
        return ~q if op == "NOT IN" else q
    if op not in {"=", "!=", "<", "<=", ">", ">="}:
        raise FilterError(f"{label} supports =, !=, <, <=, >, >= and IN, not {op}.")
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise FilterError(f"{label} must be compared with a number, not {value!r}.")
    if num.is_integer():
        num = int(num)
    lookups = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
    q = Q(**{f"{field}__{lookups[op]}": num})
    return ~q if op == "!=" else q


def _tag_q(tag_model, owner_field: str, key: str, op: str, value: Any) -> Q:
    """Match owners having a tag `key` whose value satisfies `op`; `!=`/NOT match owners without the tag too."""
    negate = op == "!=" or op.startswith("NOT")
    positive_op = {"!=": "=", "NOT LIKE": "LIKE", "NOT ILIKE": "ILIKE", "NOT IN": "IN"}.get(op, op)
    tags = tag_model.objects.filter(**{owner_field: OuterRef("pk")}, key=key).filter(
        _string_lookup("value", positive_op, value)
    )
    return ~Q(Exists(tags)) if negate else Q(Exists(tags))


def compile_model_filter(text: str | None) -> Q:
    """Compile a registered-model search filter."""
    from registry.models import ModelTag, ModelVersion

    def cmp(field: str, op: str, value: Any) -> Q:
        prefix, _, rest = field.partition(".")
        prefix_l = prefix.lower()
        if not rest and prefix_l == "name":
            return _string_lookup("name", op, value)
        if not rest and prefix_l == "description":
            return _string_lookup("description", op, value)
        if prefix_l in {"tag", "tags"} and rest:
            return _tag_q(ModelTag, "model", _unquote_key(rest), op, value)
        if prefix_l in {"metric", "metrics"} and rest:
            versions = ModelVersion.objects.filter(model=OuterRef("pk")).filter(
                _number_lookup(f"metrics__{_json_key(rest)}", op if op != "!=" else "=", value, field)
            )
            return ~Q(Exists(versions)) if op == "!=" else Q(Exists(versions))
        raise FilterError(
            f"Unknown field {field!r} in model filter; use name, description, tags.<key> or metrics.<name>."
        )

    return _compile(text, cmp)


def compile_version_filter(text: str | None) -> Q:
    """Compile a model-version search filter."""
    from registry.models import VersionTag

    def cmp(field: str, op: str, value: Any) -> Q:
        prefix, _, rest = field.partition(".")
        prefix_l = prefix.lower()
        if not rest:
            if prefix_l == "name":
                return _string_lookup("model__name", op, value)
            if prefix_l in {"version_number", "version"}:
                return _number_lookup("number", op, value, field)
            if prefix_l == "run_id":
                return _string_lookup("run_id", op, value)
            if prefix_l in {"source_path", "source"}:
                return _string_lookup("source_uri", op, value)
            if prefix_l in {"stage", "current_stage"}:
                return _string_lookup("stage", op, value)
            if prefix_l == "semver":
                return _string_lookup("semver", op, value)
        if prefix_l in {"tag", "tags"} and rest:
            return _tag_q(VersionTag, "version", _unquote_key(rest), op, value)
        if prefix_l in {"metric", "metrics"} and rest:
            key = _json_key(rest)
            q = _number_lookup(f"metrics__{key}", op, value, field)
            return q & Q(**{"metrics__has_key": key}) if op == "!=" else q
        if prefix_l in {"param", "params"} and rest:
            return _string_lookup(f"params__{_json_key(rest)}", op, value)
        raise FilterError(
            f"Unknown field {field!r} in version filter; use name, version_number, run_id, source_path, stage, "
            "tags.<key>, metrics.<name> or params.<name>."
        )

    return _compile(text, cmp)


def _compile(text: str | None, cmp) -> Q:
    if text is None or not text.strip():
        return Q()
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"Filter is longer than {MAX_FILTER_LENGTH} characters.")
    tokens = tokenize(text)
    if not tokens:
        return Q()
    return _Parser(tokens, cmp).parse()
