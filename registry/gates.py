"""The promotion-gate plug point: governance installs a gate that may refuse moves onto protected targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Gate = Callable[..., None]
_gates: list[Gate] = []


def register_gate(gate: Gate) -> None:
    """Install `gate`; it is called with model, kind ("stage"/"alias"), target, version and actor."""
    if gate not in _gates:
        _gates.append(gate)


def unregister_gate(gate: Gate) -> None:
    """Remove a previously installed gate."""
    if gate in _gates:
        _gates.remove(gate)


def check_protected_move(*, model: Any, kind: str, target: str, version: Any, actor: Any) -> None:
    """Ask every installed gate whether `version` may move onto `target`; a gate refuses by raising."""
    for gate in list(_gates):
        gate(model=model, kind=kind, target=target, version=version, actor=actor)
