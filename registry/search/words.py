"""Plain-word search: `wine quality` finds what names, describes or tags both words, case-insensitively.

The search box takes either plain words or a filter expression (search.parser). `understand` decides which a text
is, so the page can say what it searched for: a text is an expression when it compares something (an operator, or
LIKE / ILIKE / IN outside quotes); anything else is words.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Upper

from registry.errors import InvalidInput
from registry.search.parser import MAX_FILTER_LENGTH, FilterError, tokenize

MAX_WORDS = 16
MAX_WORD_LENGTH = 200


@dataclass(frozen=True)
class Understood:
    """What a search text was taken to be: `kind` is "words" or "filter"; `words` holds the words of a word search."""

    kind: str
    text: str
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        """One sentence for the page: what was searched for."""
        if self.kind == "filter":
            return f"Searched with the filter expression {self.text}"
        listed = ", ".join(f"“{word}”" for word in self.words)
        plural = "s" if len(self.words) > 1 else ""
        return f"Searched for the word{plural} {listed} in names, descriptions and tag values"


def _is_expression(text: str) -> bool:
    try:
        tokens = tokenize(text)
    except FilterError:
        return False  # stray punctuation: words
    for tok, nxt in zip(tokens, [*tokens[1:], None], strict=True):
        if tok.kind == "op":
            return True
        # `name LIKE 'x%'` and `stage IN ('a')` compare; "wine in production" is three words.
        follows = "end" if nxt is None else nxt.kind
        if tok.kind == "kw" and ((tok.value in {"LIKE", "ILIKE"} and follows in {"string", "end"})
                                 or (tok.value == "IN" and follows in {"lparen", "end"})):
            return True
    return False


def split_words(text: str) -> tuple[str, ...]:
    """The distinct words of `text` (whitespace-separated, surrounding quotes dropped), refused when too many."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"The search is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}.")
    words: list[str] = []
    for raw in text.split():
        word = raw.strip("'\"`")
        if not word or word.lower() in (w.lower() for w in words):
            continue
        if len(word) > MAX_WORD_LENGTH:
            raise InvalidInput(f"A search word is {len(word)} characters long; the limit is {MAX_WORD_LENGTH}.")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in word):
            raise InvalidInput("A search word contains a control character.")
        words.append(word)
    if len(words) > MAX_WORDS:
        raise InvalidInput(f"The search has {len(words)} words; the limit is {MAX_WORDS}.")
    return tuple(words)


def understand(text: str | None) -> Understood | None:
    """Classify a search box's text as a filter expression or plain words (None for an empty box)."""
    text = (text or "").strip()
    if not text:
        return None
    if _is_expression(text):
        return Understood(kind="filter", text=text)
    return Understood(kind="words", text=text, words=split_words(text))


def understand_box(words: str, expression: str = "") -> Understood | None:
    """What the models page's box holds: its text (`q`), classified, or else an old address's `filter=`."""
    if words.strip():
        return understand(words)
    return Understood(kind="filter", text=expression.strip()) if expression.strip() else None


def words_q(words: tuple[str, ...], *, fields: tuple[str, ...], tag_model: type, owner_field: str) -> Q:
    """Rows where every word appears (case-insensitive) in one of `fields` or in one of the row's tag values."""
    q = Q()
    for word in words:
        any_field = Q()
        for field in fields:
            any_field |= Q(**{f"{field}__icontains": word})
        # The tag lookup last: the database tries the row's own columns first and skips the subquery when they match.
        tags = tag_model.objects.filter(**{owner_field: OuterRef("pk"), "value__icontains": word})
        q &= any_field | Q(Exists(tags))
    return q


def model_words_q(words: tuple[str, ...]) -> Q:
    """Registered models whose name, description or a tag value holds every word."""
    from registry.models import ModelTag

    return words_q(words, fields=("name", "description"), tag_model=ModelTag, owner_field="model")


def version_words_q(words: tuple[str, ...]) -> Q:
    """Versions whose model name, own description or a tag value holds every word, case-insensitively: each word,
    upper-cased by the database, is looked for in the version's maintained search text (search.text), stored
    upper-cased the same way; PostgreSQL answers all the words from one trigram index."""
    q = Q()
    for word in words:
        q &= Q(search_text__contains=Upper(Value(word)))
    return q
