"""The one textual form of a moment that the audit chain hashes, checkpoints sign and exports show."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """Return an aware datetime as a UTC ISO-8601 string with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
