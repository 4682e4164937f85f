"""The search filter language (MLflow's, plus OR and parentheses), tokenized and parsed to a small syntax tree.

    name = 'x'   name LIKE 'churn%'   name ILIKE '%Fraud%'   tags.team = 'ml'   tag.`a b` != 'x'
    version_number >= 3   run_id = 'abc'   metrics.auc > 0.9   (a OR b) AND c

The parser knows the grammar only; what a field name means is the compiler's business (search.compiler).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from registry import validation
from registry.errors import InvalidInput

MAX_FILTER_LENGTH = 4000
# Parentheses are the only nesting in the grammar (NOT only negates LIKE, ILIKE or IN). The cap keeps the
# recursive descent, and the SQL it becomes, far from any recursion limit whatever the input.
MAX_NESTING = 32


class FilterError(InvalidInput):
    """A filter string that does not parse or names an unknown field."""


_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<ident>(?:[A-Za-z_][\w]*)(?:\.(?:`[^`]+`|"[^"]+"|[\w.\-/:]+))?)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL"}
PATTERN_OPS = {"LIKE", "ILIKE", "IN"}
NULL_OPS = {"IS NULL", "IS NOT NULL"}  # `field IS [NOT] NULL`: whether the key is there at all (no value)


@dataclass
class Token:
    """One lexical token: its kind (lparen, op, string, number, ident, kw ...), value and position."""

    kind: str
    value: Any
    pos: int


@dataclass(frozen=True)
class Comparison:
    """`field op value`: op is =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT LIKE/ILIKE/IN or IS [NOT] NULL; IN takes a
    list, IS [NOT] NULL takes no value (None)."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    """Two or more operands joined by AND or OR, in the order they were written."""

    op: str
    operands: tuple[Node, ...]


Node = Comparison | BoolOp


def _token_value(kind: str, raw: str) -> tuple[str, Any]:
    """Return the (kind, value) of a matched token: strings unquoted, numbers parsed, keywords upper-cased."""
    if kind == "string":
        body = raw[1:-1]
        value = body.replace("''", "'") if raw[0] == "'" else body
        return kind, re.sub(r"\\(.)", r"\1", value)
    if kind == "number":
        number = float(raw) if any(c in raw for c in ".eE") else int(raw)
        if not math.isfinite(number) or (isinstance(number, int) and abs(number) > validation.BIGINT_MAX):
            raise FilterError(f"Number {raw[:40]!r} in filter is out of range.")
        return kind, number
    if kind == "ident" and raw.upper() in KEYWORDS:
        return "kw", raw.upper()
    return kind, raw


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
        kind, value = _token_value(kind, match.group(kind))
        tokens.append(Token(kind, value, match.start(match.lastgroup)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens: expr := term (OR term)*, term := factor (AND factor)*."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("Filter ended unexpectedly.")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            tok = self.peek()
            raise FilterError(f"Unexpected {tok.value!r} at position {tok.pos} in filter.")
        return node

    def joined(self, keyword: str, operand: Any) -> Node:
        """Parse `operand (keyword operand)*`; a single operand stands for itself."""
        operands = [operand()]
        while (tok := self.peek()) and tok.kind == "kw" and tok.value == keyword:
            self.take()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else BoolOp(keyword, tuple(operands))

    def expr(self) -> Node:
        return self.joined("OR", self.term)

    def term(self) -> Node:
        return self.joined("AND", self.factor)

    def factor(self) -> Node:
        tok = self.take()
        if tok.kind == "lparen":
            return self.group(tok)
        if tok.kind != "ident":
            raise FilterError(f"Expected a field name at position {tok.pos}, found {tok.value!r}.")
        op = self.operator(tok)
        if op in NULL_OPS:
            return Comparison(tok.value, op, None)
        if op.endswith("IN"):
            return Comparison(tok.value, op, self.value_list())
        vtok = self.take()
        if vtok.kind not in {"string", "number"}:
            raise FilterError(f"Expected a quoted string or a number at position {vtok.pos}.")
        return Comparison(tok.value, op, vtok.value)

    def group(self, opening: Token) -> Node:
        """Parse a parenthesised expression whose '(' was just taken, at most MAX_NESTING deep."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FilterError(f"Filter nests parentheses deeper than {MAX_NESTING} levels "
                              f"(at position {opening.pos}).")
        node = self.expr()
        if self.peek() is None:
            raise FilterError(f"Missing ')' to close '(' at position {opening.pos}.")
        closing = self.take()
        if closing.kind != "rparen":
            raise FilterError(f"Expected ')' at position {closing.pos} in filter.")
        self.depth -= 1
        return node

    def operator(self, field: Token) -> str:
        """Parse the comparison operator after `field`, normalised (== is =, <> is !=, NOT LIKE is one op)."""
        op_tok = self.take()
        if op_tok.kind == "kw" and op_tok.value == "NOT":
            nxt = self.take()
            if nxt.kind != "kw" or nxt.value not in PATTERN_OPS:
                raise FilterError(f"Expected LIKE, ILIKE or IN after NOT at position {nxt.pos}.")
            return f"NOT {nxt.value}"
        if op_tok.kind == "kw" and op_tok.value == "IS":
            nxt = self.take()
            negated = nxt.kind == "kw" and nxt.value == "NOT"
            if negated:
                nxt = self.take()
            if nxt.kind != "kw" or nxt.value != "NULL":
                raise FilterError(f"Expected NULL or NOT NULL after IS at position {nxt.pos}.")
            return "IS NOT NULL" if negated else "IS NULL"
        if op_tok.kind == "op" or (op_tok.kind == "kw" and op_tok.value in PATTERN_OPS):
            return {"==": "=", "<>": "!="}.get(op_tok.value, op_tok.value)
        raise FilterError(f"Expected a comparison operator after {field.value!r} at position {op_tok.pos}.")

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


def parse(text: str | None) -> Node | None:
    """Parse a filter string to its syntax tree (None when it is empty), or raise FilterError saying where."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"Filter is longer than {MAX_FILTER_LENGTH} characters.")
    try:
        validation.no_controls(text, "Filter")
    except InvalidInput as exc:
        raise FilterError(exc.message)
    tokens = tokenize(text)
    if not tokens:
        return None
    return _Parser(tokens).parse()
