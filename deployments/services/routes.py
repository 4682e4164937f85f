"""What the gateway serves: whether a version may be served, and the endpoint's routing snapshot for a rollout in
its current phase and weight, rewritten (generation bumped, history recorded) with every change."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments.models import Deployment, Phase, RoutingRecord, Strategy
from deployments.services.common import is_user
from registry.errors import InvalidInput
from registry.models import Artifact, ArtifactFormat, ModelVersion, VersionSignature, VersionStatus
from registry.pipeline.selectors import CLEAN, version_scan_status, version_signature_status
from registry.pipeline.services import signature_verify


def servable_route(version: ModelVersion, *, require_signature: bool = True) -> dict[str, Any]:
    """Return the routing entry for serving `version`, or raise InvalidInput saying why it may not be served.

    Only ONNX files are served, and only from a version whose every file scanned clean and (unless the caller
    only previews) whose signed tree verifies.
    """
    label = f"version {version.number} of {version.model.name!r}"
    if version.status != VersionStatus.READY:
        raise InvalidInput(f"{label} is not ready ({version.status}).")
    onnx = [a for a in Artifact.objects.filter(version=version, format=ArtifactFormat.ONNX).order_by("path")]
    if not onnx:
        raise InvalidInput(f"{label} has no ONNX file; convert its scikit-learn file to ONNX (or upload one) "
                           "before deploying it.")
    artifact = next((a for a in onnx if a.path.rsplit("/", 1)[-1] == "model.onnx"), onnx[0])
    scan = version_scan_status(version=version)
    if scan["status"] != CLEAN:
        raise InvalidInput(f"{label} cannot be served: its files have not all scanned clean. {scan['detail']}")
    if require_signature:
        if VersionSignature.objects.filter(version=version).exists():
            signature_verify(version=version)  # re-hash the stored bytes now: a tampered blob never goes live
        signature = version_signature_status(version=version)
        if signature["status"] != "verified":
            raise InvalidInput(f"{label} cannot go live: its signature is not verified. {signature['detail']}")
    sig = version.signature or {}
    outputs = sig.get("outputs") or []
    return {
        "version_id": version.pk, "number": version.number, "sha256": artifact.blob_id, "path": artifact.path,
        "inputs": [{"name": str(c.get("name", "")), "type": str(c.get("type", ""))} for c in sig.get("inputs") or []],
        "labels": list(outputs[0].get("labels") or []) if outputs and isinstance(outputs[0], dict) else [],
    }


def stored_route(deployment: Deployment, which: str) -> dict[str, Any] | None:
    """Return the route a deployment captured when it started (so later file changes cannot alter what serves)."""
    return (deployment.analysis.get("_routes") or {}).get(which)


def routing_apply(deployment: Deployment, *, actor: Any, reason: str) -> None:
    """Rewrite the endpoint's routing snapshot for the deployment's state; record it in the history."""
    endpoint = deployment.endpoint
    routing = _routing(deployment, stored_route(deployment, "stable"), stored_route(deployment, "candidate"))
    endpoint.generation += 1
    routing["generation"] = endpoint.generation
    endpoint.routing = routing
    endpoint.save(update_fields=["routing", "generation"])
    RoutingRecord.objects.create(endpoint=endpoint, deployment=deployment, generation=endpoint.generation,
                                 routing=routing, reason=reason[:300], actor=actor if is_user(actor) else None,
                                 at=timezone.now())
    from deployments import serving

    transaction.on_commit(lambda: serving.routing_changed(endpoint.name))


def _route(base: dict[str, Any], weight: int, role: str) -> dict[str, Any]:
    return {**base, "weight": weight, "role": role}


def _routing(deployment: Deployment, stable: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
    """Build the gateway's snapshot for a deployment in its current phase and weight."""
    d = deployment
    out: dict[str, Any] = {"deployment_id": d.pk, "strategy": d.strategy, "phase": d.phase, "routes": [],
                           "shadow": None, "preview": None, "ab": None, "warm": []}
    live = d.phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED)
    if d.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
        out["routes"] = [_route(candidate, 100, "stable")]
        if stable and d.warm_until and d.warm_until > timezone.now():
            out["warm"] = [stable["sha256"]]
            out["warm_until"] = d.warm_until.isoformat()
            out["rollback_route"] = _route(stable, 100, "stable")
        return out
    if not live:  # failed or aborted: back to what served before
        out["routes"] = [_route(stable, 100, "stable")] if stable else []
        return out
    if stable is None:
        out["routes"] = [_route(candidate, 100, "stable")]
        return out
    if d.strategy == Strategy.CANARY:
        out["routes"] = [r for r in (_route(stable, 100 - d.weight, "stable"), _route(candidate, d.weight, "canary"))
                         if r["weight"] > 0]
    elif d.strategy == Strategy.BLUE_GREEN:
        out["routes"] = [_route(stable, 100, "stable")]
        out["preview"] = _route(candidate, 0, "preview")
    elif d.strategy == Strategy.SHADOW:
        out["routes"] = [_route(stable, 100, "stable")]
        out["shadow"] = {**_route(candidate, 0, "shadow"), "percent": d.shadow_percent}
    elif d.strategy == Strategy.AB:
        bases = {stable["version_id"]: stable, candidate["version_id"]: candidate}
        out["routes"] = [_route(bases[a["version_id"]], a["weight"], "stable" if a["version_id"] == stable["version_id"]
                                else f"arm-{i}") for i, a in enumerate(d.arms)]
        out["ab"] = {"header": d.ab_header, "field": d.ab_field}
    else:
        out["routes"] = [_route(candidate, 100, "stable")]
    return out
