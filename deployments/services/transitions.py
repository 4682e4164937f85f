"""How a rollout moves: through its canary steps, to success (with the old version kept warm), or back to its stable
version. The services of this package call these inside their transaction, with the endpoint locked; each writes
the deployment, rewrites the routing and emits its event. `now` is the clock the rollout is judged on."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments.models import Deployment, Phase, Strategy
from deployments.services.common import is_user, scope
from deployments.services.routes import routing_apply, stored_route
from registry import events
from registry import permissions as registry_permissions
from registry import services as registry_services
from registry.errors import DomainError, InvalidState
from registry.models import ModelVersion, Role


def steps_advance(d: Deployment, *, now: datetime) -> None:
    """Run the canary's instant steps (set_weight) until a step that waits; save where it got to."""
    while d.step_index < len(d.steps):
        step = d.steps[d.step_index]
        if "set_weight" in step:
            d.weight = step["set_weight"]
            d.step_index += 1
            d.step_started_at = now
            continue
        break
    d.save(update_fields=["weight", "step_index", "step_started_at", "updated_at"])


def step_next(d: Deployment, *, actor: Any, now: datetime, reason: str) -> None:
    """Leave the current step and run on; promote fully after the last one."""
    d.step_index += 1
    d.step_started_at = now
    before = d.weight
    steps_advance(d, now=now)
    events.emit("deployment.step_advanced", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "weight": d.weight,
        "reason": reason})
    if d.step_index >= len(d.steps):
        succeed(d, actor=actor, reason=f"canary completed its {len(d.steps)} steps", now=now)
    elif d.weight != before:
        routing_apply(d, actor=actor, reason=f"canary weight {before}% → {d.weight}% ({reason})")


def succeed(d: Deployment, *, actor: Any, reason: str, now: datetime | None = None) -> None:
    """Send all traffic to the candidate and let the registry follow; a progressive rollout then stays promoting
    (the old version loaded and warm, so rolling back is instant) until keep_warm_seconds pass."""
    now = now or timezone.now()
    d.weight = 100
    d.warm_until = now + timedelta(seconds=d.keep_warm_seconds) if d.stable_version_id else None
    follow = _follow_registry(d, actor)
    if follow:
        d.message = follow
    if d.strategy != Strategy.DIRECT and d.warm_until and d.keep_warm_seconds > 0:
        d.phase = Phase.PROMOTING
        d.save(update_fields=["phase", "weight", "warm_until", "message", "updated_at"])
        routing_apply(d, actor=actor, reason=reason)
        events.emit("deployment.promoting", actor=actor, target=d, data={
            **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
            "version": d.candidate_version.number, "reason": reason, "registry": follow or "unchanged",
            "warm_until": d.warm_until.isoformat()})
        return
    d.phase, d.finished_at = Phase.SUCCEEDED, now
    d.save(update_fields=["phase", "weight", "finished_at", "warm_until", "message", "updated_at"])
    routing_apply(d, actor=actor, reason=reason)
    events.emit("deployment.succeeded", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number, "reason": reason, "registry": follow or "unchanged"})


def promotion_finish(d: Deployment, *, actor: Any, reason: str, now: datetime | None = None) -> None:
    """End the promoting window: the rollout has succeeded and the old version is released."""
    d.phase, d.finished_at, d.warm_until = Phase.SUCCEEDED, now or timezone.now(), None
    d.save(update_fields=["phase", "finished_at", "warm_until", "updated_at"])
    routing_apply(d, actor=actor, reason=reason)
    events.emit("deployment.succeeded", actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number, "reason": reason})


def _follow_registry(d: Deployment, actor: Any, version: ModelVersion | None = None) -> str:
    """Move the environment's alias/stage to what now serves, through the governance gate; say what happened."""
    env = d.endpoint.environment
    version = version or d.candidate_version
    notes = []
    delegate = registry_permissions.with_delegated_role(actor, d.endpoint.model, Role.MAINTAINER) \
        if is_user(actor) else actor
    if env.follow_alias:
        current = version.model.aliases.filter(name=env.follow_alias).values_list("version_id", flat=True).first()
        if current != version.pk:
            try:
                with transaction.atomic():
                    registry_services.alias_set(model=d.endpoint.model, alias=env.follow_alias, version=version,
                                                actor=delegate)
                notes.append(f"alias @{env.follow_alias} now points at version {version.number}")
            except DomainError as error:
                notes.append(f"alias @{env.follow_alias} not moved: {error.message}")
    if env.follow_stage and version.stage != env.follow_stage:
        try:
            with transaction.atomic():
                registry_services.version_transition_stage(version=version, actor=delegate, stage=env.follow_stage,
                                                           archive_existing_versions=True)
            notes.append(f"version {version.number} moved to {env.follow_stage}")
        except DomainError as error:
            notes.append(f"stage {env.follow_stage} not set: {error.message}")
    return "; ".join(notes)


def end(d: Deployment, *, actor: Any, phase: str, action: str, reason: str,
        now: datetime | None = None, by_hand: str = "") -> Deployment:
    """Stop an active rollout and send all traffic back to the stable version; `by_hand` is the reason a person
    gave (the deployment then records who ended it)."""
    d.phase, d.weight, d.finished_at, d.message = phase, 0, now or timezone.now(), reason[:2000]
    if by_hand and is_user(actor):
        d.ended_by, d.end_reason = actor, by_hand[:500]
    d.save(update_fields=["phase", "weight", "finished_at", "message", "ended_by", "end_reason", "updated_at"])
    routing_apply(d, actor=actor, reason=reason)
    events.emit(action, actor=actor, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number,
        "back_to_version": d.stable_version.number if d.stable_version_id else None, "reason": reason})
    return d


def smoke_check(d: Deployment) -> None:
    """Run the candidate on a row synthesised from its signature; raise InvalidState when it cannot answer."""
    from deployments import serving

    try:
        serving.smoke_check(stored_route(d, "candidate"))
    except Exception as error:
        raise InvalidState(f"Smoke check of version {d.candidate_version.number} failed: {error}") from error


def evaluate_after_commit(d: Deployment) -> None:
    """Let the monitor look at a rollout as soon as this change commits (an open pause shows as paused at once)."""
    if d.active:
        from deployments import tasks

        transaction.on_commit(lambda: tasks.rollout_evaluate.delay(d.pk))
