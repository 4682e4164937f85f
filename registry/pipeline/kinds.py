"""The job kinds apps register at start-up (through jobs.register_handler), each with the label pages show."""

from __future__ import annotations

_labels: dict[str, str] = {}


def register(kind: str, label: str) -> None:
    """Make `kind` a known job kind shown as `label`."""
    _labels[str(kind)] = label


def is_registered(kind: str) -> bool:
    """Whether some app registered `kind` (only registered kinds are queued)."""
    return str(kind) in _labels


def label(kind: str) -> str:
    """Return the label of `kind`; a kind no app registers shows as its stored value."""
    return _labels.get(str(kind), str(kind))
