"""Load, once and in a fixed number of queries, every registry fact a version's technical documentation draws on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from governance import gates
from governance.cards import bom
from governance.cards.selectors import card_for_version, card_history
from governance.models import (
    AuditCheckpoint,
    AuditEvent,
    ModelCard,
    ModelCardRevision,
    PromotionRequest,
    ProtectedTarget,
)
from registry import operations
from registry.lineage import selectors as lineage
from registry.lineage.models import EdgeKind, NodeKind
from registry.models import Alias, Artifact, ModelVersion
from registry.pipeline import selectors as pipeline_selectors

LINEAGE_DEPTH = 5
# The audit actions that make up a model's lifecycle record: versions, aliases, stages, cards, protection and
# policies, promotions executed, deprecations. Prefixes end with a dot; whole actions do not.
LIFECYCLE_PREFIXES = ("model_version_alias.", "model_card.", "protected_target.")
LIFECYCLE_ACTIONS = (
    "model_version.created", "model_version.stage_transitioned", "model_version.deprecated",
    "model_version.deleted", "model_version.signed", "promotion.executed", "promotion.emergency_rollback_started",
    "registered_model.deprecated", "registered_model.undeprecated",
)
# Any policy's change (the review policy today, promotion policies as they come) belongs to the lifecycle too.
POLICY_MARK = "policy."


@dataclass
class Facts:
    """What the registry holds about one version and its model, loaded for the nine sections."""

    version: ModelVersion
    actor: Any
    card: ModelCard | None
    card_revisions: list[ModelCardRevision]
    versions: list[dict[str, Any]]
    aliases: dict[int, list[str]]
    artifacts: list[dict[str, Any]]
    scan: dict[str, Any]
    signature: dict[str, Any]
    bom: dict[str, Any]
    bom_signed: bool
    lineage: list[dict[str, Any]]
    lineage_recorded: bool
    deployment_nodes: list[dict[str, Any]]
    requests: list[PromotionRequest]
    targets: list[ProtectedTarget]
    gate_results: dict[str, list[dict[str, Any]]]
    events: list[AuditEvent]
    checkpoints: int
    operations: dict[str, list[dict[str, Any]]]
    operations_reported: bool
    content: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> Any:
        return self.version.model


def _lineage(version: ModelVersion, actor: Any) -> tuple[list[dict[str, Any]], bool, list[dict[str, Any]]]:
    """Upstream provenance (datasets, feature sets, code) and the deployment nodes directly downstream."""
    node = lineage.node_for_version(version=version)
    if node is None:
        return [], False, []
    graph = lineage.lineage_walk(actor=actor, node=node, direction="upstream", depth=LINEAGE_DEPTH)
    kinds = {(e.downstream_id, e.upstream_id): e.kind for e in graph.edges}
    names = {n.pk: f"{n.get_kind_display()} {n.name}{' ' + n.version if n.version else ''}" for n in graph.nodes}
    upstream = []
    for n in graph.nodes:
        if n.pk == node.pk:
            continue
        feeds = [f"{EdgeKind(kind).label} by {names.get(down, down)}" for (down, up), kind in kinds.items()
                 if up == n.pk and down in names]
        upstream.append({
            "id": n.pk, "kind": n.kind, "kind_label": n.get_kind_display(), "name": n.name, "version": n.version,
            "uri": n.uri, "digest": n.digest, "row_count": n.row_count, "repository": n.repository,
            "commit": n.commit, "transformation": n.transformation_ref, "personal_data": n.contains_personal_data,
            "depth": abs(graph.depths[n.pk]), "relations": sorted(feeds)})
    deployed = (lineage.visible_nodes(actor).filter(kind=NodeKind.DEPLOYMENT, upstream_edges__upstream=node,
                                                    upstream_edges__kind=EdgeKind.DEPLOYED_AS)
                .order_by("created_at", "pk").values("name", "version", "endpoint", "external_id", "created_at"))
    deployments = [{**row, "created_at": row["created_at"].isoformat()} for row in deployed]
    return upstream, True, deployments


def _events(version: ModelVersion) -> list[AuditEvent]:
    """The model's lifecycle events, oldest first, in one query whatever their number."""
    wanted = Q(action__in=LIFECYCLE_ACTIONS) | Q(action__contains=POLICY_MARK)
    for prefix in LIFECYCLE_PREFIXES:
        wanted |= Q(action__startswith=prefix)
    return list(AuditEvent.objects.filter(Q(model_id=version.model_id) & wanted).order_by("seq")
                .only("seq", "created_at", "actor_username", "action", "target_label", "version_number", "data",
                      "hash"))


def facts_load(*, version: ModelVersion, actor: Any) -> Facts:
    """Return every fact the document needs about an already visible version."""
    model = version.model
    card = card_for_version(version=version)
    revisions = list(card_history(card=card).select_related(None).order_by("revision")) if card else []
    versions = list(ModelVersion.objects.filter(model=model).order_by("number").values(
        "pk", "number", "semver", "stage", "status", "created_at", "deprecated", "description"))
    aliases: dict[int, list[str]] = {}
    for name, version_id in Alias.objects.filter(model=model).order_by("name").values_list("name", "version_id"):
        aliases.setdefault(version_id, []).append(name)
    artifacts = list(Artifact.objects.filter(version=version).order_by("path").values(
        "path", "format", "size", "blob_id"))
    bom_data, bom_signed = bom.bom_get(version=version)
    upstream, recorded, deployment_nodes = _lineage(version, actor)
    requests = list(PromotionRequest.objects.filter(version=version).select_related("requested_by")
                    .prefetch_related("decisions").order_by("created_at", "pk"))
    targets = list(ProtectedTarget.objects.filter(model=model).order_by("kind", "name"))
    return Facts(
        version=version, actor=actor, card=card, card_revisions=revisions, versions=versions, aliases=aliases,
        artifacts=artifacts, scan=pipeline_selectors.version_scan_status(version=version),
        signature=pipeline_selectors.version_signature_status(version=version),
        bom=bom.bom_summary(bom_data), bom_signed=bom_signed, lineage=upstream, lineage_recorded=recorded,
        deployment_nodes=deployment_nodes, requests=requests, targets=targets,
        # One evaluation per protected target of the model: bounded by its policies, not by its history.
        gate_results={t.label: gates.evaluate_for(version, t) for t in targets},
        events=_events(version), checkpoints=AuditCheckpoint.objects.count(),
        operations=operations.version_operations(version=version),
        operations_reported=operations.has_reporters(),
        content=card.content if card else {},
    )
