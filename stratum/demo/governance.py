"""Demo governance state: protect Production and @champion on the demo models and leave one request open."""

from __future__ import annotations

from typing import Any

from governance import services
from governance.models import PromotionRequest, ProtectedTarget, TargetKind
from registry.models import RegisteredModel, Stage

DEMO_APPROVALS = 2
PRIMARY_METRIC = {"binary": ("roc_auc", True), "multiclass": ("f1_macro", True), "regression": ("rmse", False)}


def _rules(model: RegisteredModel) -> list[dict[str, Any]]:
    task = model.tags.filter(key="task").values_list("value", flat=True).first()
    if task not in PRIMARY_METRIC:
        return []
    metric, higher = PRIMARY_METRIC[task]
    return [{"metric": metric, "higher_is_better": higher, "margin": 0.05 if higher else 5.0}]


def protect_demo_models(*, users: dict[str, Any], models: list[RegisteredModel], **kwargs: Any) -> None:
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


DEMO_SUBJECT = "demo.subject@stratum.example"
DEMO_OTHERS = tuple(f"customer-{i:04d}@stratum.example" for i in range(1, 41))


def seed_cards_and_erasure(*, users: dict[str, Any], models: list[RegisteredModel], **kwargs: Any) -> None:
    """Give the compliance user the compliance group, draft cards for the champions, and a demo data subject."""
    from django.contrib.auth.models import Group

    from governance.cards import services as card_services
    from governance.erasure import services as erasure_services
    from governance.models import ModelCard, SubjectManifest
    from governance.permissions import COMPLIANCE_GROUP
    from registry.lineage import services as lineage
    from registry.lineage.models import LineageEdge, LineageNode, NodeKind

    engineer, compliance = users.get("engineer"), users.get("compliance")
    if engineer is None:
        return
    if compliance is not None:
        compliance.groups.add(Group.objects.get_or_create(name=COMPLIANCE_GROUP)[0])
    for model in models:
        champion = model.aliases.filter(name="champion").select_related("version").first()
        if champion is not None and not ModelCard.objects.filter(version=champion.version).exists():
            card_services.card_create(version=champion.version, actor=model.owner or engineer)
    handler = compliance or engineer
    for model in models:
        versions = list(model.versions.order_by("number"))
        datasets = list(LineageNode.objects.filter(
            kind=NodeKind.DATASET, downstream_edges__downstream__model_version__in=versions).distinct().order_by("pk"))
        if len(versions) < 3 or len(datasets) < 2:
            continue
        if SubjectManifest.objects.filter(node__in=datasets).exists():
            return
        actor = model.owner or engineer
        for dataset in datasets[:2]:
            erasure_services.manifest_upload(node=dataset, actor=handler, identifiers=[DEMO_SUBJECT, *DEMO_OTHERS])
        champion = model.aliases.filter(name="champion").select_related("version").first()
        serving = champion.version if champion else versions[-1]
        deployment = lineage.node_create(actor=actor, kind=NodeKind.DEPLOYMENT, model=model,
                                         name=f"{model.name}-prod", external_id="demo-endpoint").obj
        source, _ = lineage.version_node_ensure(serving)
        if not LineageEdge.objects.filter(upstream=source, downstream=deployment).exists():
            lineage.edge_create(actor=actor, upstream=source, downstream=deployment, kind="deployed_as")
        return
