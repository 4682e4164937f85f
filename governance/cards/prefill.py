"""Pre-fill a model card from what the registry knows: identity, owners, datasets, metrics, code, lineage, approvals."""

from __future__ import annotations

import copy
from typing import Any

from governance.cards.schema import empty_content
from governance.models import Decision, PromotionDecision
from registry.lineage import selectors as lineage
from registry.models import DatasetRole, ModelVersion, Role
from registry.permissions import model_role
from registry.pipeline import selectors as pipeline_selectors

LINEAGE_DEPTH = 3


def _owners(version: ModelVersion) -> list[dict[str, str]]:
    owner = version.model.owner or version.creator
    if owner is None:
        return []
    name = owner.get_full_name() or owner.get_username()
    return [{"name": name, "contact": owner.email or ""}]


def _datasets(version: ModelVersion, roles: set[str]) -> list[dict[str, str]]:
    return [{"name": ds.name, "uri": ds.uri, "digest": ds.digest, "role": ds.role}
            for ds in version.datasets.all() if ds.role in roles]


def _artifacts(version: ModelVersion) -> list[dict[str, Any]]:
    return [{"path": a.path, "format": a.format, "sha256": a.blob_id, "size": a.size}
            for a in version.artifacts.order_by("path")]


def signature_status(version: ModelVersion) -> str:
    """Describe the version's recorded input/output signature and the artifact signature verification result."""
    signature = version.signature or {}
    inputs, outputs = len(signature.get("inputs") or []), len(signature.get("outputs") or [])
    io = (f"input/output signature recorded ({inputs} input(s), {outputs} output(s))" if inputs or outputs
          else "no input/output signature recorded")
    result = pipeline_selectors.version_signature_status(version=version)
    return f"{io}; artifact signature {result['status']}: {result['detail']}"


def _lineage(version: ModelVersion, actor: Any) -> list[dict[str, Any]]:
    node = lineage.node_for_version(version=version)
    if node is None:
        return []
    graph = lineage.lineage_walk(actor=actor, node=node, direction="upstream", depth=LINEAGE_DEPTH)
    return [{"kind": n.kind, "name": n.name, "version": n.version, "digest": n.digest,
             "depth": abs(graph.depths[n.pk]), "personal_data": n.contains_personal_data}
            for n in graph.nodes if n.pk != node.pk]


def approvals(version: ModelVersion) -> list[dict[str, Any]]:
    """Return every promotion decision on the version: who, their role, decision, comment, time."""
    decisions = (PromotionDecision.objects.filter(request__version=version)
                 .select_related("request", "reviewer").order_by("created_at", "pk"))
    out = []
    for d in decisions:
        role = model_role(d.reviewer, version.model) if d.reviewer else None
        out.append({"request": d.request_id, "target": d.request.target_label, "who": d.reviewer_username,
                    "role": Role(role).label if role else "former user",
                    "decision": Decision(d.decision).label + (f" (stale: {d.stale_reason})" if d.stale else ""),
                    "comment": d.comment,
                    "at": d.created_at.isoformat(timespec="seconds")})
    return out


def _measures(version: ModelVersion, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Registry metrics as overall measures; rows people added (slices, intervals) are kept."""
    kept = {(m.get("name"), m.get("slice") or ""): m for m in existing}
    out = []
    for name, value in sorted((version.metrics or {}).items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        row = dict(kept.pop((name, ""), {"name": name, "slice": ""}))
        row["value"] = float(value)
        out.append(row)
    out.extend(kept.values())
    return out


def prefill(version: ModelVersion, actor: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return `base` (or an empty card) with every registry-derived field refreshed; human fields are kept."""
    content = copy.deepcopy(base) if base else empty_content()
    details = content.setdefault("model_details", {})
    details.update({
        "name": version.model.name, "version": version.number, "semver": version.semver,
        "date": version.created_at.date().isoformat(),
        "code": {"repository": version.code_repository, "commit": version.code_commit},
        "artifacts": _artifacts(version), "signature_status": signature_status(version),
        "parameters": {str(k): v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                       for k, v in sorted((version.params or {}).items())},
        "lineage": _lineage(version, actor), "approvals": approvals(version),
    })
    if not details.get("owners"):
        details["owners"] = _owners(version)
    if not (details.get("overview") or "").strip():
        details["overview"] = version.description or version.model.description or ""
    metrics = content.setdefault("metrics", {})
    metrics["performance_measures"] = _measures(version, metrics.get("performance_measures") or [])
    content.setdefault("training_data", {})["datasets"] = _datasets(version, {DatasetRole.TRAIN})
    content.setdefault("evaluation_data", {})["datasets"] = _datasets(
        version, {DatasetRole.VALIDATION, DatasetRole.TEST})
    return content
