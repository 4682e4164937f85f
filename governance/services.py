"""Every governance write: protected targets, promotion requests and their decisions, rollback, checkpoints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import audit, evidence, gates, permissions, refusals, selectors, signing, timestamps
from governance.models import (
    ACTIVE_STATES,
    GATE_KEYS,
    AuditCheckpoint,
    AuditEvent,
    CardApprovers,
    Decision,
    PromotionDecision,
    PromotionRequest,
    PromotionState,
    ProtectedTarget,
    ReviewPolicy,
    TargetKind,
)
from registry import events, validation
from registry import permissions as registry_permissions
from registry import services as registry_services
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.locking import model_lock
from registry.models import ModelVersion, RegisteredModel, Role, Stage, VersionSignature, VersionStatus
from registry.pipeline import services as pipeline

PROTECTABLE_STAGES = (Stage.STAGING, Stage.PRODUCTION)


def _lock_model(model_id: int) -> RegisteredModel:
    """Lock the model first, as registry services do, so governance and registry writers queue in one order
    (registry/locking.py)."""
    return model_lock(model_id)


def _lock_request(request: PromotionRequest) -> PromotionRequest:
    _lock_model(request.model_id)
    return (PromotionRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("model", "version", "requested_by").get(pk=request.pk))



def normalise_target(kind: str | None, target: str) -> tuple[str, str]:
    """Return a valid (kind, target): a protectable stage or an alias; the kind is inferred when not given."""
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput("A target (a stage such as Production, or an alias such as champion) is required.")
    target = target.strip()
    if kind in (None, ""):
        kind = TargetKind.STAGE if target.lower() in {s.lower() for s in Stage.values} else TargetKind.ALIAS
    if kind == TargetKind.STAGE:
        stage = validation.stage(target)
        if stage not in PROTECTABLE_STAGES:
            raise InvalidInput(f"Only {' and '.join(PROTECTABLE_STAGES)} can be protected, not {stage}.")
        return TargetKind.STAGE, stage
    if kind == TargetKind.ALIAS:
        return TargetKind.ALIAS, validation.alias_name(target.lstrip("@"))
    raise InvalidInput(f"Unknown target kind {kind!r}; use 'stage' or 'alias'.")


def _metric_rules(rules: Any) -> list[dict[str, Any]]:
    if rules in (None, ""):
        return []
    if not isinstance(rules, list):
        raise InvalidInput("Metric rules must be a list of {metric, higher_is_better, margin}.")
    out = []
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("metric"), str) or not rule["metric"].strip():
            raise InvalidInput("Each metric rule needs a metric name.")
        margin = rule.get("margin", 0.0)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
            raise InvalidInput(f"The margin of metric {rule['metric']!r} must be a number ≥ 0.")
        out.append({"metric": rule["metric"].strip(), "higher_is_better": bool(rule.get("higher_is_better", True)),
                    "margin": float(margin)})
    return out


# ------------------------------------------------------------------------------------- protected targets


@transaction.atomic
def protected_target_set(
    *, model: RegisteredModel, actor, name: str, kind: str | None = None, approvals_required: int = 2,
    required_gates: Any = None, allow_emergency_rollback: bool = False, metric_rules: Any = None,
) -> ProtectedTarget:
    """Protect a stage or alias of `model` (or change its policy); maintainers only.

    `required_gates` names the gates that must pass (a failed or unavailable one blocks); the others are advisory.
    None requires every gate.
    """
    model = _lock_model(model.pk)
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    if not permissions.can_manage_protection(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change its protected targets.")
    kind, name = normalise_target(kind, name)
    if isinstance(approvals_required, bool) or not isinstance(approvals_required, int) or not (
        1 <= approvals_required <= 10
    ):
        raise InvalidInput("Approvals required must be a whole number from 1 to 10.")
    policy = {"approvals_required": approvals_required, "required_gates": _required_gates(required_gates),
              "allow_emergency_rollback": bool(allow_emergency_rollback), "metric_rules": _metric_rules(metric_rules)}
    existing = ProtectedTarget.objects.filter(model=model, kind=kind, name=name).first()
    before = None
    if existing is None:
        obj = ProtectedTarget.objects.create(model=model, kind=kind, name=name, created_by=actor, **policy)
    else:
        before = {key: getattr(existing, key) for key in policy}
        for key, value in policy.items():
            setattr(existing, key, value)
        existing.save()
        obj = existing
    events.emit("protected_target.updated" if before else "protected_target.created", actor=actor, target=obj,
                data={"model": model.name, "kind": kind, "name": name, "before": before, "after": policy})
    return obj


def _required_gates(value: Any) -> list[str]:
    """Validate a list of gate keys (None: every gate), in the gates' own order."""
    if value is None:
        return list(GATE_KEYS)
    if not isinstance(value, (list, tuple, set)) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"Required gates must be a list of gate names: {', '.join(GATE_KEYS)}.")
    unknown = sorted(set(value) - set(GATE_KEYS))
    if unknown:
        raise InvalidInput(f"Unknown gate(s) {', '.join(unknown)}; use {', '.join(GATE_KEYS)}.",
                           details={"fields": {"required_gates": f"Unknown gate(s): {', '.join(unknown)}."}})
    return [key for key in GATE_KEYS if key in value]


@transaction.atomic
def review_policy_set(*, model: RegisteredModel, actor, card_approvers: str, card_min_completeness: int
                      ) -> ReviewPolicy:
    """Set who approves the model's cards and how complete a card must be to go for review; maintainers only."""
    model = _lock_model(model.pk)
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    if not permissions.can_set_review_policy(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change who reviews its model cards.")
    if card_approvers not in CardApprovers.values:
        raise InvalidInput(f"Card approvers must be one of {', '.join(CardApprovers.values)}.",
                           details={"fields": {"card_approvers": "Choose reviewers, compliance or both."}})
    if isinstance(card_min_completeness, bool) or not isinstance(card_min_completeness, int) or not (
            1 <= card_min_completeness <= 100):
        raise InvalidInput("The completeness threshold is a whole percentage from 1 to 100.",
                           details={"fields": {"card_min_completeness": "A whole number from 1 to 100."}})
    policy, _ = ReviewPolicy.objects.select_for_update().get_or_create(model=model)
    before = {"card_approvers": policy.card_approvers, "card_min_completeness": policy.card_min_completeness}
    policy.card_approvers, policy.card_min_completeness = card_approvers, card_min_completeness
    policy.updated_by = actor
    policy.save()
    after = {"card_approvers": card_approvers, "card_min_completeness": card_min_completeness}
    events.emit("review_policy.updated", actor=actor, target=model,
                data={"model": model.name, "before": before, "after": after})
    return policy


@transaction.atomic
def protected_target_delete(*, model: RegisteredModel, actor, kind: str | None, name: str) -> None:
    """Lift the protection of a stage or alias; maintainers only, and audited like every change."""
    model = _lock_model(model.pk)
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    if not permissions.can_manage_protection(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change its protected targets.")
    kind, name = normalise_target(kind, name)
    obj = ProtectedTarget.objects.filter(model=model, kind=kind, name=name).first()
    if obj is None:
        raise NotFound(f"The {kind} {name!r} of {model.name!r} is not protected.")
    events.emit("protected_target.deleted", actor=actor, target=obj,
                data={"model": model.name, "kind": kind, "name": name})
    obj.delete()


# ------------------------------------------------------------------------------------ promotion requests


@transaction.atomic
def promotion_request_create(
    *, version: ModelVersion, actor, kind: str | None, target: str, justification: str, is_rollback: bool = False,
) -> PromotionRequest:
    """Ask for `version` to be moved onto a protected target; reviewers then decide."""
    model = _lock_model(version.model_id)
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    version = ModelVersion.objects.get(pk=version.pk)
    if not permissions.can_request_promotion(actor, model):
        raise Forbidden(f"Only contributors of {model.name!r} may request promotions.")
    kind, target = normalise_target(kind, target)
    justification = validation.text(justification, "Justification", 20_000).strip()
    if not justification:
        raise InvalidInput("A justification is required: tell the reviewers why this version should move.")
    policy = gates.protected_target(model, kind, target)
    label = f"@{target}" if kind == TargetKind.ALIAS else target
    if policy is None:
        raise InvalidInput(f"{label} is not a protected target of {model.name!r}; move the version directly.")
    if version.status != VersionStatus.READY:
        raise InvalidState(f"Version {version.number} is not ready ({version.status}).")
    holder = gates.target_holder(model, kind, target)
    if holder is not None and holder.pk == version.pk and kind == TargetKind.ALIAS:
        raise InvalidState(f"Version {version.number} already holds {label}.")
    if kind == TargetKind.STAGE and version.stage == target:
        raise InvalidState(f"Version {version.number} is already in {target}.")
    duplicate = PromotionRequest.objects.filter(version=version, kind=kind, target=target, state__in=ACTIVE_STATES)
    if duplicate.exists():
        raise InvalidState(f"Promotion request #{duplicate.first().pk} already asks for this move.")
    request = PromotionRequest.objects.create(
        model=model, version=version, kind=kind, target=target, justification=justification, requested_by=actor,
        approvals_required=policy.approvals_required, is_rollback=is_rollback,
        holder_version_number=holder.number if holder else None, gate_results=gates.evaluate_for(version, policy),
    )
    request.model, request.version = model, version
    events.emit("promotion.requested", actor=actor, target=request, data={
        "model": model.name, "version": version.number, "kind": kind, "target": target,
        "justification": justification, "approvals_required": policy.approvals_required,
        "current_holder": holder.number if holder else None, "rollback": is_rollback,
    })
    return request


def _check_open(request: PromotionRequest) -> None:
    if request.state != PromotionState.OPEN:
        raise InvalidState(f"Promotion request #{request.pk} is {request.state}; it can no longer be decided.")


def _check_reviewer(request: PromotionRequest, actor) -> None:
    registry_permissions.require(registry_permissions.can_view, actor, request.model, action="see it")
    approval = permissions.can_approve(actor, request)
    if not approval:
        raise Forbidden(approval.reason)
    if request.decisions.filter(reviewer_id=actor.pk, stale_at__isnull=True).exists():
        raise InvalidState(f"You have already decided on promotion request #{request.pk}; each reviewer decides once.")


def _record_decision(request: PromotionRequest, actor, decision: str, comment: str) -> PromotionDecision:
    try:
        with transaction.atomic():
            return PromotionDecision.objects.create(request=request, reviewer=actor,
                                                    reviewer_username=actor.get_username(), decision=decision,
                                                    comment=comment)
    except IntegrityError:
        raise InvalidState(f"You have already decided on promotion request #{request.pk}; each reviewer decides once.")


def _reverify_signature(version, actor) -> None:
    """Re-hash a signed version's stored files against its bundle now, so the gate judges the bytes as they are."""
    if VersionSignature.objects.filter(version=version).exists():
        pipeline.signature_verify(version=version, actor=actor)


def _execute(request: PromotionRequest, actor) -> PromotionRequest:
    """Run the move of an approved request under the gate's pass, in the caller's transaction."""
    policy = gates.protected_target(request.model, request.kind, request.target)
    evidence.ensure_current(request)
    _reverify_signature(request.version, actor)
    results = gates.evaluate(request, policy)
    request.gate_results = results
    blocking = [r["label"] for r in results if r["blocking"]]
    if blocking:
        request.save(update_fields=["gate_results", "updated_at"])
        events.emit("promotion.blocked", actor=actor, target=request,
                    data={"gates": blocking, "version": request.version.number})
        return request
    holder = gates.target_holder(request.model, request.kind, request.target)
    # The quorum's approval is the authority for this move; the registry records it under the executing user.
    delegate = registry_permissions.with_delegated_role(actor, request.model, Role.MAINTAINER)
    with gates.executing(request):
        if request.kind == TargetKind.STAGE:
            registry_services.version_transition_stage(version=request.version, actor=delegate, stage=request.target,
                                                       archive_existing_versions=True)
        else:
            registry_services.alias_set(model=request.model, alias=request.target, version=request.version,
                                        actor=delegate)
    now = timezone.now()
    request.state, request.executed_at, request.closed_at = PromotionState.EXECUTED, now, now
    request.holder_version_number = holder.number if holder else None
    request.save(update_fields=["state", "executed_at", "closed_at", "holder_version_number", "gate_results",
                                "updated_at"])
    approvers = list(evidence.live_approvals(request).values_list("reviewer_username", flat=True))
    events.emit("promotion.executed", actor=actor, target=request, data={
        "kind": request.kind, "target": request.target, "from_version": request.holder_version_number,
        "to_version": request.version.number, "approved_by": approvers, "rollback": request.is_rollback,
    })
    return request


@refusals.audited("approve")
@transaction.atomic
def promotion_approve(*, request: PromotionRequest, actor, comment: str = "") -> PromotionRequest:
    """Approve as a reviewer; the approval that reaches the quorum executes the move in the same transaction."""
    request = _lock_request(request)
    registry_permissions.require(registry_permissions.can_view, actor, request.model, action="see it")
    _check_open(request)
    _check_reviewer(request, actor)
    comment = validation.text(comment or "", "Comment", 10_000).strip()
    current = evidence.refresh(request, actor)
    evidence.record(_record_decision(request, actor, Decision.APPROVE, comment), current)
    approvals = evidence.live_approvals(request).count()
    quorum = approvals >= request.approvals_required
    events.emit("promotion.approved", actor=actor, target=request, data={
        "comment": comment, "approvals": approvals, "approvals_required": request.approvals_required,
        "quorum_reached": quorum,
    })
    if quorum:
        request.state = PromotionState.APPROVED
        request.save(update_fields=["state", "updated_at"])
        _execute(request, actor)
    return request


@refusals.audited("reject")
@transaction.atomic
def promotion_reject(*, request: PromotionRequest, actor, comment: str) -> PromotionRequest:
    """Reject as a reviewer, with a reason; a rejection closes the request."""
    request = _lock_request(request)
    registry_permissions.require(registry_permissions.can_view, actor, request.model, action="see it")
    _check_open(request)
    _check_reviewer(request, actor)
    comment = validation.text(comment or "", "Comment", 10_000).strip()
    if not comment:
        raise InvalidInput("Say why you reject the request: a comment is required.")
    _record_decision(request, actor, Decision.REJECT, comment)
    request.state, request.closed_at = PromotionState.REJECTED, timezone.now()
    request.save(update_fields=["state", "closed_at", "updated_at"])
    events.emit("promotion.rejected", actor=actor, target=request, data={"comment": comment})
    return request


@refusals.audited("cancel")
@transaction.atomic
def promotion_cancel(*, request: PromotionRequest, actor, comment: str = "") -> PromotionRequest:
    """Withdraw an open or approved-but-blocked request (the requester or a maintainer)."""
    request = _lock_request(request)
    registry_permissions.require(registry_permissions.can_view, actor, request.model, action="see it")
    if request.state not in ACTIVE_STATES:
        raise InvalidState(f"Promotion request #{request.pk} is {request.state}; it can no longer be cancelled.")
    if not permissions.can_cancel(actor, request):
        raise Forbidden("Only the requester or a maintainer of the model may cancel this request.")
    request.state, request.closed_at = PromotionState.CANCELLED, timezone.now()
    request.save(update_fields=["state", "closed_at", "updated_at"])
    events.emit("promotion.cancelled", actor=actor, target=request,
                data={"comment": validation.text(comment or "", "Comment", 10_000).strip()})
    return request


@refusals.audited("execute")
@evidence.rechecked
@transaction.atomic
def promotion_execute(*, request: PromotionRequest, actor) -> PromotionRequest:
    """Retry the move of an approved request that a blocking gate held back (requester or maintainer)."""
    request = _lock_request(request)
    registry_permissions.require(registry_permissions.can_view, actor, request.model, action="see it")
    evidence.refuse_if_stale(request)
    if request.state != PromotionState.APPROVED:
        raise InvalidState(f"Promotion request #{request.pk} is {request.state}; only approved requests execute.")
    if not permissions.can_cancel(actor, request):
        raise Forbidden("Only the requester or a maintainer of the model may execute this request.")
    return _execute(request, actor)


@transaction.atomic
def promotion_expire(*, request: PromotionRequest) -> PromotionRequest:
    """Close a request left undecided past PROMOTION_EXPIRY_DAYS (run by the system)."""
    request = _lock_request(request)
    if request.state not in ACTIVE_STATES:
        return request
    request.state, request.closed_at = PromotionState.EXPIRED, timezone.now()
    request.save(update_fields=["state", "closed_at", "updated_at"])
    events.emit("promotion.expired", actor=None, target=request,
                data={"days": settings.PROMOTION_EXPIRY_DAYS})
    return request


def promotion_expire_stale() -> int:
    """Expire every active request older than PROMOTION_EXPIRY_DAYS; return how many."""
    cutoff = timezone.now() - timedelta(days=settings.PROMOTION_EXPIRY_DAYS)
    stale = PromotionRequest.objects.filter(state__in=ACTIVE_STATES, created_at__lt=cutoff)
    count = 0
    for request in stale.iterator():
        if promotion_expire(request=request).state == PromotionState.EXPIRED:
            count += 1
    return count


@transaction.atomic
def promotion_rollback(
    *, model: RegisteredModel, actor, kind: str | None, target: str, reason: str, emergency: bool = False,
) -> PromotionRequest:
    """Move a target back to its previous holder: open a request, or execute at once as an allowed emergency."""
    model = _lock_model(model.pk)
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    kind, target = normalise_target(kind, target)
    reason = validation.text(reason or "", "Reason", 20_000).strip()
    if not reason:
        raise InvalidInput("A rollback needs a reason.")
    previous = selectors.previous_holder(model=model, kind=kind, target=target)
    if previous is None:
        raise InvalidState(f"The audit trail names no earlier holder of {target} on {model.name!r} to roll back to.")
    policy = gates.protected_target(model, kind, target)
    if not emergency:
        return promotion_request_create(version=previous, actor=actor, kind=kind, target=target,
                                        justification=f"Rollback: {reason}", is_rollback=True)
    if policy is None or not policy.allow_emergency_rollback:
        raise Forbidden(f"The policy of {target} on {model.name!r} does not allow emergency rollback; "
                        "open a rollback request instead.")
    if not permissions.can_emergency_rollback(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may roll back in an emergency.")
    request = PromotionRequest.objects.create(
        model=model, version=previous, kind=kind, target=target, justification=f"Emergency rollback: {reason}",
        requested_by=actor, approvals_required=0, is_rollback=True, state=PromotionState.APPROVED,
    )
    request.model = model
    events.emit("promotion.emergency_rollback_started", actor=actor, target=request,
                data={"kind": kind, "target": target, "to_version": previous.number, "reason": reason})
    executed = _execute(request, actor)
    if executed.state != PromotionState.EXECUTED:
        raise InvalidState("A blocking gate held the rollback back: " +
                           ", ".join(r["label"] for r in executed.gate_results if r["blocking"]))
    return executed


# ---------------------------------------------------------------------------------------- checkpoints


@transaction.atomic
def audit_checkpoint_create() -> AuditCheckpoint | None:
    """Sign the current head of the audit chain; nothing when no event was added since the last checkpoint."""
    audit.lock_chain()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None or AuditCheckpoint.objects.filter(seq__gte=head[0]).exists():
        return None
    seq, head_hash = head
    created_at = timezone.now()
    signature = signing.sign(signing.checkpoint_message(seq, head_hash, timestamps.iso(created_at)))
    return AuditCheckpoint.objects.create(seq=seq, head_hash=head_hash, created_at=created_at,
                                          key_id=signing.key_id(), signature=signature)
