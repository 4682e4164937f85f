"""The domain-event plug point: every registry service emits one event; other apps listen.

Receivers of `domain_event` run inside the service's transaction (the audit trail writes there);
receivers of `domain_event_committed` run after commit (webhooks, notifications).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.dispatch import Signal

domain_event = Signal()
domain_event_committed = Signal()


@dataclass(frozen=True)
class DomainEvent:
    """What happened, who did it, to what, and the payload describing the change."""

    action: str
    actor: Any
    target_type: str
    target_id: Any
    target_label: str
    data: dict[str, Any] = field(default_factory=dict)
    # The emitting service's own object, as it stands in the transaction: in-transaction listeners may read it
    # instead of querying the target back (it is never serialised).
    instance: Any = field(default=None, compare=False, repr=False)


def emit(action: str, *, actor: Any, target: models.Model, data: dict[str, Any] | None = None) -> DomainEvent:
    """Send `action` about `target` to in-transaction listeners now and to after-commit listeners later."""
    event = DomainEvent(
        action=action,
        actor=actor,
        target_type=target._meta.label_lower,
        target_id=target.pk,
        target_label=str(target),
        data=dict(data or {}),
        instance=target,
    )
    domain_event.send(sender=DomainEvent, event=event)
    transaction.on_commit(lambda: domain_event_committed.send(sender=DomainEvent, event=event))
    return event
