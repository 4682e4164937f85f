"""The promotion gate governance installs in the registry, and the per-request gate checks reviewers see."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.urls import reverse

from governance import refusals
from governance.models import GATE_LABELS, PromotionRequest, ProtectedTarget, TargetKind
from registry.errors import ProtectedMove
from registry.models import Alias, ModelVersion, RegisteredModel
from registry.pipeline import selectors as pipeline_selectors

PASSED, FAILED, NOT_AVAILABLE, SKIPPED = "passed", "failed", "not_available", "skipped"

# (model id, kind, target, version id) of the move an approved promotion request is executing right now.
_executing: ContextVar[tuple[int, str, str, int] | None] = ContextVar("stratum_promotion_executing", default=None)


@contextlib.contextmanager
def executing(request: PromotionRequest) -> Iterator[None]:
    """Let exactly the move `request` names through the gate while the block runs."""
    token = _executing.set((request.model_id, request.kind, request.target, request.version_id))
    try:
        yield
    finally:
        _executing.reset(token)


def protected_target(model: RegisteredModel, kind: str, target: str) -> ProtectedTarget | None:
    """Return the protection policy of a model's stage or alias, or None when it is not protected."""
    return ProtectedTarget.objects.filter(model_id=model.pk, kind=kind, name=target).first()


def promotion_gate(*, model: Any, kind: str, target: str, version: Any, actor: Any) -> None:
    """Refuse any move onto a protected target that is not the execution of an approved promotion request."""
    if _executing.get() == (model.pk, kind, target, version.pk):
        return
    policy = protected_target(model, kind, target)
    if policy is None:
        return
    label = f"alias @{target}" if kind == TargetKind.ALIAS else f"stage {target}"
    refusals.record(action="promotion.gate_refused", actor=actor, target_type="registry.modelversion",
                    target_id=version.pk, target_label=str(version), model_id=model.pk, model_name=model.name,
                    version_number=version.number, data={"kind": kind, "target": target})
    request_url = reverse("governance:promotion-create", args=[model.name, version.number])
    raise ProtectedMove(
        f"The {label} of model {model.name!r} is protected: moving version {version.number} there needs an "
        f"approved promotion request ({policy.approvals_required} approval(s)). Open one with "
        f"POST /api/v1/promotions {{\"model\": \"{model.name}\", \"version\": {version.number}, "
        f"\"target\": \"{target}\", \"kind\": \"{kind}\", \"justification\": \"…\"}} "
        f"or from the version page.",
        details={"promotion_request": {"model": model.name, "version": version.number, "kind": kind,
                                       "target": target, "approvals_required": policy.approvals_required,
                                       "open_at": "/api/v1/promotions",
                                       "request_url": f"{request_url}?target={kind}:{target}"}},
    )


def protected_targets(*, model: Any) -> list[dict[str, Any]]:
    """Name the model's protected stages and aliases for the registry's pages (the gate's "what is protected")."""
    return [{"kind": t.kind, "name": t.name, "label": t.label, "approvals_required": t.approvals_required}
            for t in ProtectedTarget.objects.filter(model_id=model.pk).order_by("kind", "name")]


# ------------------------------------------------------------------------------------- per-request checks


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


def evaluate(request: PromotionRequest, policy: ProtectedTarget | None = None) -> list[dict[str, Any]]:
    """Check every gate of a request now, as its target's policy says (the policy's evaluation, shared with explain
    and execution)."""
    from governance.policy import evaluation

    return evaluation.evaluate_request(request).gates


def evaluate_for(version: ModelVersion, policy: ProtectedTarget) -> list[dict[str, Any]]:
    """Check the gates a move of `version` onto the protected target would face now."""
    from governance.policy import evaluation

    return evaluation.evaluate_move(model=policy.model, version=version, kind=policy.kind, target=policy.name,
                                    protection=policy).gates


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
