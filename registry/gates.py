"""The promotion-gate plug point: governance installs a gate that may refuse moves onto protected targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Gate = Callable[..., None]
Probe = Callable[..., list[dict[str, Any]]]
_gates: list[Gate] = []
_probes: list[Probe] = []


def register_gate(gate: Gate, *, probe: Probe | None = None) -> None:
    """Install `gate`; it is called with model, kind ("stage"/"alias"), target, version and actor.

    `probe(model=...)` names the targets the gate protects ({kind, name, label, approvals_required} each), so pages
    can say before a move that it will open a promotion request instead of moving.
    """
    if gate not in _gates:
        _gates.append(gate)
    if probe is not None and probe not in _probes:
        _probes.append(probe)


def unregister_gate(gate: Gate) -> None:
    """Remove a previously installed gate."""
    if gate in _gates:
        _gates.remove(gate)


def protected_targets(*, model: Any) -> list[dict[str, Any]]:
    """Return what the installed gates protect on `model` (empty when no gate says)."""
    return [target for probe in list(_probes) for target in probe(model=model)]


def check_protected_move(*, model: Any, kind: str, target: str, version: Any, actor: Any) -> None:
    """Ask every installed gate whether `version` may move onto `target`; a gate refuses by raising."""
    for gate in list(_gates):
        gate(model=model, kind=kind, target=target, version=version, actor=actor)
