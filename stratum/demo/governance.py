"""Demo governance story: protected targets, complete and approved cards, two-reviewer promotions, one request
left open for the reviewers, a data subject for the erasure tour and a signed audit checkpoint."""

from __future__ import annotations

from typing import Any

from governance import services
from governance.models import PromotionRequest, PromotionState, ProtectedTarget, TargetKind
from registry.models import ModelVersion, RegisteredModel, Stage

DEMO_APPROVALS = 2
PRIMARY_METRIC = {"binary": ("roc_auc", True), "multiclass": ("f1_macro", True), "regression": ("rmse", False)}
REVIEWERS = ("reviewer", "reviewer2")


def _rules(model: RegisteredModel) -> list[dict[str, Any]]:
    task = model.tags.filter(key="task").values_list("value", flat=True).first()
    if task not in PRIMARY_METRIC:
        return []
    metric, higher = PRIMARY_METRIC[task]
    return [{"metric": metric, "higher_is_better": higher, "margin": 0.05 if higher else 5.0}]


def protect_model(*, model: RegisteredModel, actor: Any) -> None:
    """Protect Production and @champion of `model` (two approvals, emergency rollback allowed); idempotent."""
    for kind, name in ((TargetKind.STAGE, Stage.PRODUCTION), (TargetKind.ALIAS, "champion")):
        if not ProtectedTarget.objects.filter(model=model, kind=kind, name=name).exists():
            services.protected_target_set(model=model, actor=actor, kind=kind, name=name,
                                          approvals_required=DEMO_APPROVALS, metric_rules=_rules(model),
                                          allow_emergency_rollback=True)


def protect_demo_models(*, users: dict[str, Any], models: list[RegisteredModel], **kwargs: Any) -> None:
    """Protect the demo targets and open one request waiting for the reviewers; idempotent."""
    engineer = users.get("engineer")
    if engineer is None or not models:
        return
    for model in models:
        protect_model(model=model, actor=model.owner or engineer)
    if PromotionRequest.objects.filter(model__in=models, state=PromotionState.OPEN).exists():
        return
    if PromotionRequest.objects.filter(model__in=models).exclude(state=PromotionState.EXECUTED).exists():
        return  # people have decided on the demo request already; do not open another one
    for model in models:
        challenger = model.aliases.filter(name="challenger").select_related("version").first()
        if challenger is None:
            continue
        services.promotion_request_create(
            version=challenger.version, actor=engineer, kind=TargetKind.ALIAS, target="champion",
            justification=(f"Version {challenger.version.number} held @champion before and has been retrained on "
                           "this quarter's data; it is the challenger in Staging. Promote it back to @champion: the "
                           "metrics and datasets are on this page, and the deltas against the champion are above."),
        )
        return


# ------------------------------------------------------------------------------------------ model cards

CARD_TEXT: dict[str, dict[str, Any]] = {
    "model_details": {"license": "Apache-2.0"},
    "intended_use": {
        "primary_uses": "Decision support for analysts: a ranked suggestion that a person reviews before acting.",
        "primary_users": "The analytics team and the reviewers named on this card.",
        "out_of_scope": "Fully automated decisions about individuals; populations unlike the training data.",
    },
    "factors": {"relevant_factors": "Measurement instrument and collection site; class balance of the sample."},
    "metrics": {"decision_thresholds": "The class with the highest predicted probability; no abstention band."},
    "evaluation_data": {"description": "A stratified 25% hold-out of the bundled dataset (random_state=42)."},
    "quantitative_analyses": {
        "unitary_results": "See the performance measures: computed once on the hold-out split, no resampling.",
    },
    "ethical_considerations": {
        "risks_and_harms": "Small public dataset: results may not transfer; a wrong suggestion could mislead.",
    },
    "caveats_recommendations": {
        "limitations": "Trained on a few hundred rows; no drift monitoring beyond the serving gateway's metrics.",
        "recommendations": "Retrain when the data source changes; keep a person in the loop.",
    },
    "human_oversight": {"description": "Promotions need two reviewers; the platform team can roll back at once."},
}


def card_complete_and_approve(*, version: ModelVersion, author: Any, reviewer: Any) -> None:
    """Give `version` a complete card, submitted by `author` and approved by `reviewer`; idempotent."""
    from governance.cards import services as card_services
    from governance.models import CardState, ModelCard

    card = ModelCard.objects.filter(version=version).first() or card_services.card_create(version=version,
                                                                                         actor=author)
    if card.state == CardState.APPROVED:
        return
    if card.state == CardState.DRAFT:
        for section, values in CARD_TEXT.items():
            missing = {k: v for k, v in values.items() if not (card.content.get(section) or {}).get(k)}
            if missing:
                card = card_services.card_update(card=card, actor=author, section=section, values=missing,
                                                 note=f"Demo: filled {section.replace('_', ' ')}.")
        card = card_services.card_submit(card=card, actor=author)
    card_services.card_approve(card=card, actor=reviewer, comment="Complete; reviewed against the hold-out results.")


def promote_with_reviews(*, version: ModelVersion, kind: str, target: str, requester: Any, reviewers: list[Any],
                         justification: str, clock: Any = None) -> PromotionRequest:
    """Request a protected move and approve it by each reviewer in turn (the last approval executes it).

    `clock(step)` is entered around each step, so the demo can spread the request over days.
    """
    import contextlib

    step = clock or (lambda _i: contextlib.nullcontext())
    with step(0):
        request = services.promotion_request_create(version=version, actor=requester, kind=kind, target=target,
                                                    justification=justification)
    for index, reviewer in enumerate(reviewers, start=1):
        with step(index):
            request = services.promotion_approve(request=request, actor=reviewer,
                                                 comment="Gates pass and the deltas favour the candidate.")
    return request


# --------------------------------------------------------------------------------------- erasure, audit

DEMO_SUBJECT = "demo.subject@stratum.example"
DEMO_OTHERS = tuple(f"customer-{i:04d}@stratum.example" for i in range(1, 41))


def seed_cards_and_erasure(*, users: dict[str, Any], models: list[RegisteredModel], report: Any = None,
                           **kwargs: Any) -> None:
    """Give the compliance user the compliance group and put the demo data subject in two datasets' manifests."""
    from django.contrib.auth.models import Group

    from governance.erasure import services as erasure_services
    from governance.models import SubjectManifest
    from governance.permissions import COMPLIANCE_GROUP
    from registry.lineage.models import LineageNode, NodeKind

    engineer, compliance = users.get("engineer"), users.get("compliance")
    if engineer is None:
        return
    if compliance is not None:
        compliance.groups.add(Group.objects.get_or_create(name=COMPLIANCE_GROUP)[0])
    handler = compliance or engineer
    for model in models:
        versions = list(model.versions.order_by("number"))
        datasets = list(LineageNode.objects.filter(
            kind=NodeKind.DATASET, downstream_edges__downstream__model_version__in=versions).distinct().order_by("pk"))
        if len(versions) < 3 or len(datasets) < 2:
            continue
        if not SubjectManifest.objects.filter(node__in=datasets).exists():
            for dataset in datasets[:2]:
                erasure_services.manifest_upload(node=dataset, actor=handler,
                                                 identifiers=[DEMO_SUBJECT, *DEMO_OTHERS])
        if report is not None:
            report.sections.append(("Erasure demo (sign in as compliance, Erasure page):", [
                f"data subject to erase: {DEMO_SUBJECT}",
                f"it is in the subject manifests of {', '.join(str(d) for d in datasets[:2])} ({model.name}'s "
                "training and test data)"]))
        return


def audit_checkpoint(*, report: Any = None) -> None:
    """Sign the head of the audit trail, so the audit page verifies the chain against a signed checkpoint."""
    from governance.models import AuditCheckpoint

    checkpoint = services.audit_checkpoint_create()
    if report is not None:
        latest = checkpoint or AuditCheckpoint.objects.order_by("-seq").first()
        if latest is not None:
            report.sections.append(("Audit trail:", [
                f"signed checkpoint at event #{latest.seq} (key {latest.key_id}); verify with "
                "`manage.py verify_audit` or on the Audit page"]))
