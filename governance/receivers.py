"""Governance's listeners on the registry's plug points: every domain event lands in the audit trail, and review
events, once committed, queue their notifications."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from governance import audit, evidence, notifications
from governance.models import ModelCard, PromotionRequest, ProtectedTarget
from registry.events import DomainEvent
from registry.models import ModelVersion

logger = logging.getLogger(__name__)


def _scope(event: DomainEvent) -> tuple[int | None, str, int | None]:
    """Return (model id, model name, version number) of the event's target, for filtering and history."""
    if event.target_type == "registry.registeredmodel":
        return event.target_id, event.target_label, None
    if event.target_type == "registry.modelversion":
        version = event.instance
        if isinstance(version, ModelVersion) and version.pk is not None and ModelVersion.model.is_cached(version):
            return version.model_id, version.model.name, version.number
        row = ModelVersion.objects.filter(pk=event.target_id).values_list("model_id", "model__name", "number").first()
        return row if row else (None, "", None)
    if event.target_type == "governance.promotionrequest":
        row = (PromotionRequest.objects.filter(pk=event.target_id)
               .values_list("model_id", "model__name", "version__number").first())
        return row if row else (None, "", None)
    if event.target_type == "governance.modelcard":
        row = ModelCard.objects.filter(pk=event.target_id).values_list("model_id", "model__name",
                                                                        "version__number").first()
        return row if row else (None, "", None)
    if event.target_type == "governance.protectedtarget":
        row = ProtectedTarget.objects.filter(pk=event.target_id).values_list("model_id", "model__name").first()
        return (row[0], row[1], None) if row else (None, "", None)
    if isinstance(event.data.get("model_id"), int):  # other apps' events name their model themselves
        return event.data["model_id"], str(event.data.get("model", "")), event.data.get("version_number")
    return None, "", None


def record_domain_event(sender: Any, event: DomainEvent, **kwargs: Any) -> None:
    """Append `event` to the audit trail inside the transaction that emitted it."""
    model_id, model_name, version_number = _scope(event)
    audit.append(action=event.action, actor=event.actor, target_type=event.target_type, target_id=event.target_id,
                 target_label=event.target_label, data=event.data, model_id=model_id, model_name=model_name,
                 version_number=version_number)


def notify_on_commit(sender: Any, event: DomainEvent, **kwargs: Any) -> None:
    """Queue the notification a committed review event calls for (never failing the request that caused it)."""
    if event.action not in notifications.NOTIFIED_ACTIONS or event.target_id is None:
        return
    from governance.tasks import notification_send as task

    actor = event.actor
    note = str(event.data.get("comment") or "") if isinstance(event.data, dict) else ""
    try:
        task.delay(action=event.action, target_id=event.target_id, actor_id=getattr(actor, "pk", None),
                   actor_name=actor.get_username() if actor is not None else "Stratum",
                   mark=f"{event.action}:{event.target_id}:{uuid.uuid4().hex}", note=note[:2000])
    except Exception:  # a broken mail server or broker must not turn a recorded decision into an error page
        logger.exception("Could not send the %s notification for %s", event.action, event.target_id)


def check_evidence_on_commit(sender: Any, event: DomainEvent, **kwargs: Any) -> None:
    """Queue an evidence check of each active request a committed event may concern (approvals that saw other
    evidence go stale); execution checks again under lock, so a check lost here is still caught there."""
    try:
        affected = evidence.requests_affected(event)
        if not affected:
            return
        from governance.tasks import promotion_evidence_check as task

        for request_id in affected:
            task.delay(request_id=request_id)
    except Exception:  # the event has committed; a failed check must not turn it into an error for the caller
        logger.exception("Could not check the approval evidence after %s", event.action)
