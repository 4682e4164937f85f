"""The checks a protected move faces, one function per gate: scan, signature, model card; each answers in the
same shape (key, label, status, detail, required, blocking) and names its fix."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from governance.models import GATE_LABELS, ProtectedTarget, TargetKind
from registry.models import Alias, ModelVersion, RegisteredModel
from registry.pipeline import selectors as pipeline_selectors

PASSED, FAILED, NOT_AVAILABLE, SKIPPED = "passed", "failed", "not_available", "skipped"


def protected_target(model: RegisteredModel, kind: str, target: str) -> ProtectedTarget | None:
    """Return the protection policy of a model's stage or alias, or None when it is not protected."""
    return ProtectedTarget.objects.filter(model_id=model.pk, kind=kind, name=target).first()


def target_holder(model: RegisteredModel, kind: str, target: str) -> ModelVersion | None:
    """Return the version that holds a stage or alias now (for a stage, the most recently moved one)."""
    if kind == TargetKind.ALIAS:
        alias = Alias.objects.select_related("version").filter(model_id=model.pk, name=target).first()
        return alias.version if alias else None
    return ModelVersion.objects.filter(model_id=model.pk, stage=target).order_by("-updated_at", "-number").first()


def gate_result(key: str, label: str, status: str, detail: str, required: bool) -> dict[str, Any]:
    """One gate's answer: a required gate blocks when it failed or cannot be checked; an advisory one never blocks."""
    blocking = required and status in (FAILED, NOT_AVAILABLE)
    return {"key": key, "label": label, "status": status, "detail": detail, "blocking": blocking,
            "required": required}


def fix(result: dict[str, Any], model: RegisteredModel, version: ModelVersion) -> dict[str, str] | None:
    """Name the action that would make a failed or unavailable gate pass, and where to take it."""
    key = result["key"]
    if key == "model_card":
        return {"label": "Write the model card", "url": reverse("governance:card", args=[model.name, version.number])}
    pipeline = reverse("registry:version-pipeline", args=[model.name, version.number])
    if key == "signature":
        return {"label": "Sign (or re-verify) the files", "url": pipeline}
    if key == "artifact_scan":
        return {"label": "Upload, scan or convert the files", "url": pipeline}
    if key.startswith("metric:"):
        return {"label": "Compare the metrics", "url": reverse("registry:version-detail",
                                                               args=[model.name, version.number]) + "#metrics"}
    return None


def card_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "model card complete" gate: passed when every required field is filled; no card is "not available"."""
    from governance.cards.selectors import card_gate_status

    status, detail = card_gate_status(version)
    outcome = {"complete": PASSED, "incomplete": FAILED}.get(status, NOT_AVAILABLE)
    return gate_result("model_card", GATE_LABELS["model_card"], outcome, detail, required)


def scan_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "artifacts scanned clean" gate: every current file scanned, none quarantined; pending is "not available"."""
    scan = pipeline_selectors.version_scan_status(version=version)
    # A version without files has nothing the gate could vouch for: not available, like a pending scan.
    outcome = {"clean": PASSED, "quarantined": FAILED}.get(scan["status"], NOT_AVAILABLE)
    return gate_result("artifact_scan", GATE_LABELS["artifact_scan"], outcome, scan["detail"], required)


def signature_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "signature verified" gate: the signed tree matches the current files and its last verification passed."""
    sig = pipeline_selectors.version_signature_status(version=version)
    outcome = {"verified": PASSED, "failed": FAILED}.get(sig["status"], NOT_AVAILABLE)
    return gate_result("signature", GATE_LABELS["signature"], outcome, sig["detail"], required)
