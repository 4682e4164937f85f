"""Governance's listeners on the registry's plug points: every domain event lands in the audit trail."""

from __future__ import annotations

from typing import Any

from governance import audit
from governance.models import ModelCard, PromotionRequest, ProtectedTarget
from registry.events import DomainEvent
from registry.models import ModelVersion


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
