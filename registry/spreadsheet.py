"""One rule for every CSV Stratum writes: a cell a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: Any) -> str:
    """Return `value` as CSV cell text: None is empty, and text that starts like a formula gets a leading quote.

    Numbers (-0.5, +1e3) are left alone, and so is the empty string: neither is a formula.
    """
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) and not _looks_numeric(text) else text
