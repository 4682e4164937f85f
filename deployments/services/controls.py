"""A person's hand on a rollout: pause, resume, promote (a step or fully), abort, and roll back in one action."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments.models import ACTIVE_PHASES, Deployment, Phase, Strategy
from deployments.services.common import actor_name, is_user, locked, require_phase, scope
from deployments.services.plans import DEFAULT_ANALYSIS
from deployments.services.routes import routing_apply, servable_route, stored_route
from deployments.services.transitions import (
    end,
    evaluate_after_commit,
    promotion_finish,
    smoke_check,
    step_next,
    succeed,
)
from registry import events
from registry.errors import InvalidInput, InvalidState


@transaction.atomic
def deployment_pause(*, deployment: Deployment, actor: Any, reason: str = "") -> Deployment:
    """Hold a progressing rollout where it is (traffic split unchanged) until someone resumes or promotes it."""
    d = locked(deployment, actor)
    require_phase(d, (Phase.PROGRESSING,), "paused")
    d.phase, d.message = Phase.PAUSED, (reason or "paused by hand")[:2000]
    d.save(update_fields=["phase", "message", "updated_at"])
    routing_apply(d, actor=actor, reason=f"paused: {d.message}")
    events.emit("deployment.paused", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "reason": d.message})
    return d


@transaction.atomic
def deployment_resume(*, deployment: Deployment, actor: Any) -> Deployment:
    """Let a paused rollout go on from its current step (the step's clock restarts)."""
    d = locked(deployment, actor)
    require_phase(d, (Phase.PAUSED,), "resumed")
    d.phase, d.step_started_at, d.message = Phase.PROGRESSING, timezone.now(), ""
    d.save(update_fields=["phase", "step_started_at", "message", "updated_at"])
    routing_apply(d, actor=actor, reason="resumed")
    evaluate_after_commit(d)
    events.emit("deployment.resumed", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index})
    return d


@transaction.atomic
def deployment_promote(*, deployment: Deployment, actor: Any, full: bool = False) -> Deployment:
    """Move a rollout on by hand: past its current step (canary), or all the way (every strategy, or `full`)."""
    d = locked(deployment, actor)
    require_phase(d, (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING), "promoted")
    who = actor_name(actor)
    if d.phase == Phase.PROMOTING:  # already switched: release the warm old version now
        _emit_promoted(d, actor, full=True)
        promotion_finish(d, actor=actor, reason=f"promotion finished by {who}")
        return d
    if d.strategy == Strategy.CANARY and not full:
        d.phase, d.message = Phase.PROGRESSING, ""
        d.save(update_fields=["phase", "message", "updated_at"])
        _emit_promoted(d, actor, full=False)
        step_next(d, actor=actor, now=timezone.now(), reason=f"promoted by {who}")
        evaluate_after_commit(d)
        return d
    if d.strategy == Strategy.BLUE_GREEN:
        smoke_check(d)
    _emit_promoted(d, actor, full=True)
    succeed(d, actor=actor, reason=f"promoted fully by {who}")
    return d


def given_reason(reason: Any) -> str:
    """Return the reason a person gave for ending a rollout (trimmed, at most 500 characters), or say none was."""
    text = reason.strip() if isinstance(reason, str) else ""
    if len(text) > 500:
        raise InvalidInput("The reason is at most 500 characters.")
    return text or "no reason given"


def _emit_promoted(d: Deployment, actor: Any, *, full: bool) -> None:
    events.emit("deployment.promoted", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "full": full})


@transaction.atomic
def deployment_abort(*, deployment: Deployment, actor: Any, reason: str = "") -> Deployment:
    """Stop an active rollout by hand; the stable version takes all traffic again."""
    d = locked(deployment, actor)
    require_phase(d, ACTIVE_PHASES, "aborted")
    why = given_reason(reason)
    return end(d, actor=actor, phase=Phase.ABORTED, action="deployment.aborted",
               reason=reason.strip() if reason and reason.strip() else f"aborted by {actor_name(actor)}", by_hand=why)


@transaction.atomic
def deployment_rollback(*, deployment: Deployment, actor: Any, reason: str = "") -> Deployment:
    """Roll back in one action: an active rollout returns to its stable version; a finished one is replaced by a
    direct deployment of the last good version it took over from. Returns the deployment now in force."""
    d = locked(deployment, actor)
    who, why = actor_name(actor), given_reason(reason)
    if d.active:
        return end(d, actor=actor, phase=Phase.FAILED, action="deployment.rolled_back",
                   reason=reason.strip() if reason and reason.strip() else f"rolled back by {who}", by_hand=why)
    if d.phase in (Phase.FAILED, Phase.ABORTED):
        raise InvalidState(f"Deployment #{d.pk} has already ended ({d.get_phase_display().lower()}); its stable "
                           "version took the traffic back then.")
    latest = Deployment.objects.filter(endpoint=d.endpoint).order_by("-created_at", "-pk").first()
    if d.phase != Phase.SUCCEEDED or latest is None or latest.pk != d.pk:
        raise InvalidState(f"Deployment #{d.pk} is not what endpoint {d.endpoint.name!r} serves now; roll back the "
                           "latest deployment instead.")
    if d.stable_version_id is None:
        raise InvalidState(f"Deployment #{d.pk} was the endpoint's first; there is no earlier version to return to.")
    previous = d.stable_version
    route = stored_route(d, "stable") or servable_route(previous, require_signature=False)
    back = Deployment.objects.create(
        endpoint=d.endpoint, strategy=Strategy.DIRECT, phase=Phase.PROGRESSING, stable_version=d.candidate_version,
        candidate_version=previous, rollback_of=d, created_by=actor if is_user(actor) else None,
        keep_warm_seconds=d.keep_warm_seconds, started_at=timezone.now(),
        analysis={**DEFAULT_ANALYSIS, "_routes": {"stable": stored_route(d, "candidate"), "candidate": route}})
    back.endpoint = d.endpoint
    if is_user(actor):  # the deployment that was rolled back says who did it and why
        d.ended_by, d.end_reason = actor, why
        d.save(update_fields=["ended_by", "end_reason", "updated_at"])
    events.emit("deployment.rolled_back", actor=actor, target=back, data={
        **scope(d.endpoint, previous), "deployment": back.pk, "rollback_of": d.pk,
        "version": d.candidate_version.number, "back_to_version": previous.number,
        "reason": reason.strip() if reason and reason.strip() else f"rolled back by {who}"})
    succeed(back, actor=actor, reason=f"rollback of deployment #{d.pk} to version {previous.number} by {who}")
    return back
