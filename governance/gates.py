"""The promotion gate governance installs in the registry, and the per-request gate checks reviewers see."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.urls import reverse

from governance import refusals
from governance.models import PromotionRequest, ProtectedTarget, TargetKind
from governance.policy import evaluation
from governance.policy.checks import (  # noqa: F401  (the per-gate checks, re-exported for the pages and tests)
    FAILED,
    NOT_AVAILABLE,
    PASSED,
    SKIPPED,
    card_result,
    fix,
    gate_result,
    protected_target,
    scan_result,
    signature_result,
    target_holder,
)
from registry.errors import ProtectedMove
from registry.models import ModelVersion

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


def evaluate(request: PromotionRequest, policy: ProtectedTarget | None = None) -> list[dict[str, Any]]:
    """Check every gate of a request now, as its target's policy says (the policy's evaluation, shared with explain
    and execution)."""
    return evaluation.evaluate_request(request).gates


def evaluate_for(version: ModelVersion, policy: ProtectedTarget) -> list[dict[str, Any]]:
    """Check the gates a move of `version` onto the protected target would face now."""
    return evaluation.evaluate_move(model=policy.model, version=version, kind=policy.kind, target=policy.name,
                                    protection=policy).gates


