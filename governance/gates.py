"""The promotion gate governance installs in the registry, and the per-request gate checks reviewers see."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.urls import reverse

from governance import refusals
from governance.models import GATE_KEYS, GATE_LABELS, PromotionRequest, ProtectedTarget, TargetKind
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


def _result(key: str, label: str, status: str, detail: str, required: bool) -> dict[str, Any]:
    """One gate's answer: a required gate blocks when it failed or cannot be checked; an advisory one never blocks."""
    blocking = required and status in (FAILED, NOT_AVAILABLE)
    return {"key": key, "label": label, "status": status, "detail": detail, "blocking": blocking,
            "required": required}


def required_gates(policy: ProtectedTarget | None) -> set[str]:
    """Return the gate keys the policy requires (a move onto an unprotected target requires none)."""
    if policy is None:
        return set()
    return {key for key in (policy.required_gates or []) if key in GATE_KEYS}


def _metric_result(rule: dict[str, Any], candidate: ModelVersion, holder: ModelVersion | None,
                   required: bool) -> dict[str, Any]:
    name = str(rule.get("metric", ""))
    higher = bool(rule.get("higher_is_better", True))
    margin = float(rule.get("margin", 0.0) or 0.0)
    label = f"Metric {name} no worse than the current holder (margin {margin:g})"
    key = f"metric:{name}"
    value = (candidate.metrics or {}).get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _result(key, label, FAILED, f"The candidate has no numeric {name}.", required)
    if holder is None or holder.pk == candidate.pk:
        return _result(key, label, PASSED, "No current holder to compare against.", required)
    current = (holder.metrics or {}).get(name)
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return _result(key, label, PASSED, f"Version {holder.number} has no {name} to compare.", required)
    worse_by = (current - value) if higher else (value - current)
    direction = "higher" if higher else "lower"
    detail = f"{value:.6g} vs {current:.6g} (v{holder.number}); {direction} is better."
    return _result(key, label, FAILED if worse_by > margin else PASSED, detail, required)


def evaluate(request: PromotionRequest, policy: ProtectedTarget | None = None) -> list[dict[str, Any]]:
    """Check every gate of a request now: scan, signature, model card, and the policy's metric rules."""
    policy = policy if policy is not None else protected_target(request.model, request.kind, request.target)
    return _evaluate(request.model, request.version, request.kind, request.target, policy)


def evaluate_for(version: ModelVersion, policy: ProtectedTarget) -> list[dict[str, Any]]:
    """Check the gates a move of `version` onto the policy's target would face now."""
    return _evaluate(policy.model, version, policy.kind, policy.name, policy)


def _evaluate(model: RegisteredModel, version: ModelVersion, kind: str, target: str,
              policy: ProtectedTarget | None) -> list[dict[str, Any]]:
    required = required_gates(policy)
    results = [
        _scan_result(version, "artifact_scan" in required),
        _signature_result(version, "signature" in required),
        _card_result(version, "model_card" in required),
    ]
    rules = list(policy.metric_rules or []) if policy else []
    if not rules:
        # Nothing to compare is not a failure: a skipped metric gate never blocks, required or not.
        results.append(_result("metrics", GATE_LABELS["metrics"], SKIPPED,
                               "The target's policy names no metrics to compare.", False)
                       | {"required": "metrics" in required})
    else:
        holder = target_holder(model, kind, target)
        results.extend(_metric_result(rule, version, holder, "metrics" in required) for rule in rules)
    for result in results:
        result["fix"] = _fix(result, model, version) if result["status"] in (FAILED, NOT_AVAILABLE) else None
    return results


def _fix(result: dict[str, Any], model: RegisteredModel, version: ModelVersion) -> dict[str, str] | None:
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


def _card_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "model card complete" gate: passed when every required field is filled; no card is "not available"."""
    from governance.cards.selectors import card_gate_status

    status, detail = card_gate_status(version)
    outcome = {"complete": PASSED, "incomplete": FAILED}.get(status, NOT_AVAILABLE)
    return _result("model_card", GATE_LABELS["model_card"], outcome, detail, required)


def _scan_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "artifacts scanned clean" gate: every current file scanned, none quarantined; pending is "not available"."""
    scan = pipeline_selectors.version_scan_status(version=version)
    # A version without files has nothing the gate could vouch for: not available, like a pending scan.
    outcome = {"clean": PASSED, "quarantined": FAILED}.get(scan["status"], NOT_AVAILABLE)
    return _result("artifact_scan", GATE_LABELS["artifact_scan"], outcome, scan["detail"], required)


def _signature_result(version: ModelVersion, required: bool) -> dict[str, Any]:
    """The "signature verified" gate: the signed tree matches the current files and its last verification passed."""
    sig = pipeline_selectors.version_signature_status(version=version)
    outcome = {"verified": PASSED, "failed": FAILED}.get(sig["status"], NOT_AVAILABLE)
    return _result("signature", GATE_LABELS["signature"], outcome, sig["detail"], required)
