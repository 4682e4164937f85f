"""Presentation helpers for governance templates: target links, gate and state badges, signed deltas."""

from __future__ import annotations

from typing import Any

from django import template

from governance import evidence

register = template.Library()


@register.filter
def audit_target_url(event: Any) -> str | None:
    """Return the page of an audit event's target, when it has one."""
    from governance.views import target_url

    return target_url(event)


@register.filter
def gate_class(status: str) -> str:
    """Return the badge modifier of a gate status."""
    return {"passed": "badge-active", "failed": "badge-deprecated", "not_available": "badge-expired"}.get(
        status, "badge-role")


@register.filter
def gate_label(status: str) -> str:
    """Return a readable gate status."""
    return {"passed": "Passed", "failed": "Failed", "not_available": "Not available", "skipped": "Skipped"}.get(
        status, status)


@register.filter
def state_class(state: str) -> str:
    """Return the badge modifier of a promotion state."""
    return {"open": "badge-alias", "approved": "badge-expired", "executed": "badge-active",
            "rejected": "badge-deprecated", "cancelled": "badge-role", "expired": "badge-role"}.get(state, "badge-role")


@register.filter
def signed(value: Any) -> str:
    """Format a delta with its sign and up to 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value:+.4g}"


@register.filter
def can_handle_erasure(user: Any) -> bool:
    """True when the user handles erasure requests (staff or the compliance group)."""
    from governance.permissions import can_handle_erasure as allowed

    return allowed(user)


@register.filter
def counted_approvals(request: Any) -> int:
    """The approvals of a promotion request that count towards its quorum (stale ones do not), from its
    prefetched decisions."""
    return sum(1 for d in request.decisions.all() if d.decision == "approve" and d.stale_at is None)


@register.filter
def back_in_review(request: Any) -> bool:
    """Whether a request returned to review because approvals went stale (governance/evidence.py)."""
    return evidence.staleness(request)[0]


@register.filter
def card_field_label(path: str) -> str:
    """Return the readable label of a model card field's dotted path ("intended_use.primary_uses")."""
    from governance.cards.schema import label_of

    return label_of(str(path))
