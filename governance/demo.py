"""Demo governance state: protect Production and @champion on the demo models and leave one request open."""

from __future__ import annotations

from typing import Any

from registry.models import RegisteredModel, Stage

from . import services
from .models import PromotionRequest, ProtectedTarget, TargetKind

DEMO_APPROVALS = 2
PRIMARY_METRIC = {"binary": ("roc_auc", True), "multiclass": ("f1_macro", True), "regression": ("rmse", False)}


def _rules(model: RegisteredModel) -> list[dict[str, Any]]:
    task = model.tags.filter(key="task").values_list("value", flat=True).first()
    if task not in PRIMARY_METRIC:
        return []
    metric, higher = PRIMARY_METRIC[task]
    return [{"metric": metric, "higher_is_better": higher, "margin": 0.05 if higher else 5.0}]


def protect_demo_models(sender: Any, users: dict[str, Any], models: list[RegisteredModel], **kwargs: Any) -> None:
    """Protect the demo targets (2 approvals) and open one request waiting for the reviewer; idempotent."""
    engineer = users.get("engineer")
    if engineer is None or not models:
        return
    for model in models:
        actor = model.owner or engineer
        for kind, name in ((TargetKind.STAGE, Stage.PRODUCTION), (TargetKind.ALIAS, "champion")):
            if not ProtectedTarget.objects.filter(model=model, kind=kind, name=name).exists():
                services.protected_target_set(model=model, actor=actor, kind=kind, name=name,
                                              approvals_required=DEMO_APPROVALS, metric_rules=_rules(model),
                                              allow_emergency_rollback=True)
    if PromotionRequest.objects.filter(model__in=models).exists():
        return
    for model in models:
        challenger = model.aliases.filter(name="challenger").select_related("version").first()
        if challenger is None:
            continue
        services.promotion_request_create(
            version=challenger.version, actor=engineer, kind=TargetKind.ALIAS, target="champion",
            justification=(f"Version {challenger.version.number} has been the challenger in Staging; promote it to "
                           "@champion so the serving gateway picks it up. Metrics and datasets are on this page."),
        )
        return
