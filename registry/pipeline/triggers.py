"""Versioning triggers: rules that announce when a model is due for a new version, and why.

A rule fires on a cron schedule (Celery beat), when a new version of a dataset the champion was trained on is
registered in lineage, or when a rollout monitor reports degradation of what serves (any app's domain event with
action `deployment.rolled_back`, or a failed `deployment.analysis_recorded`, naming the model). Each firing is a
`RetrainRequest` and a `model.retrain_requested` domain event: audited, delivered by webhooks to the team's
training pipeline, and shown on the model page, with its reason and the suggested semantic-version bump
(new data: minor; a changed dataset schema, i.e. a signature change: major; schedule and degradation: minor/patch).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry import events, permissions, validation
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.locking import model_lock
from registry.models import Alias, ModelVersion, RegisteredModel, RetrainRequest, RetrainRule, RetrainTrigger, Stage

log = logging.getLogger(__name__)

DEGRADATION_ACTIONS = ("deployment.rolled_back", "deployment.analysis_recorded")


def parse_cron(expression: str) -> Any:
    """Return a Celery crontab for a five-field cron expression (minute hour day-of-month month day-of-week)."""
    from celery.schedules import crontab

    fields = (expression or "").split()
    if len(fields) != 5:
        raise InvalidInput("A schedule is a cron expression of five fields: minute hour day-of-month month "
                           "day-of-week, e.g. \"0 3 * * 1\" for Mondays at 03:00 UTC.")
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        schedule = crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month,
                           day_of_week=day_of_week)
        schedule.remaining_estimate(timezone.now())
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"Invalid cron expression {expression!r}: {error}.")
    return schedule


def next_due(expression: str, after: datetime) -> datetime:
    """Return the first moment after `after` the schedule fires."""
    return after + parse_cron(expression).remaining_estimate(after)


@transaction.atomic
def retrain_rule_create(*, model: RegisteredModel, actor, trigger: str, cron: str = "") -> RetrainRule:
    """Add a versioning trigger to a model (maintainers)."""
    model = model_lock(model)  # the lock order of registry/locking.py: the model first
    if not permissions.can_view(actor, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    if not permissions.can_maintain(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change its versioning triggers.")
    if trigger not in RetrainTrigger.values:
        raise InvalidInput(f"Unknown trigger {trigger!r}; use one of {', '.join(RetrainTrigger.values)}.")
    cron = validation.text(cron, "cron", 100).strip()
    due = None
    if trigger == RetrainTrigger.SCHEDULE:
        due = next_due(cron, timezone.now())
    elif cron:
        raise InvalidInput("Only schedule triggers take a cron expression.")
    elif RetrainRule.objects.filter(model=model, trigger=trigger).exists():
        raise InvalidInput(f"Model {model.name!r} already has a {RetrainTrigger(trigger).label.lower()} trigger.")
    rule = RetrainRule.objects.create(model=model, trigger=trigger, cron=cron, next_due_at=due, created_by=actor)
    events.emit("retrain_rule.created", actor=actor, target=model,
                data={"rule": rule.pk, "trigger": trigger, "cron": cron,
                      "next_due_at": due.isoformat() if due else None})
    return rule


@transaction.atomic
def retrain_rule_delete(*, rule: RetrainRule, actor) -> None:
    """Remove a versioning trigger (maintainers); its past firings stay."""
    model = model_lock(rule.model_id)
    if not permissions.can_maintain(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change its versioning triggers.")
    events.emit("retrain_rule.deleted", actor=actor, target=model,
                data={"rule": rule.pk, "trigger": rule.trigger, "cron": rule.cron})
    rule.delete()


def _serving_version(model: RegisteredModel) -> ModelVersion | None:
    """The version a retrain would replace: the champion, else the newest in Production, else the newest."""
    alias = Alias.objects.select_related("version").filter(model=model, name="champion").first()
    if alias is not None:
        return alias.version
    return (ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION).order_by("-number").first()
            or ModelVersion.objects.filter(model=model).order_by("-number").first())


def _suggested(model: RegisteredModel, bump: str) -> str:
    current = validation.highest_semver(model.versions.exclude(semver="").values_list("semver", flat=True))
    return validation.semver_next(current, bump)


@transaction.atomic
def retrain_fire(*, rule: RetrainRule, reason: str, bump: str, details: dict[str, Any] | None = None,
                 actor=None, now: datetime | None = None) -> RetrainRequest:
    """Record that `rule`'s model is due for a new version and announce it (`model.retrain_requested`)."""
    model = model_lock(rule.model_id)  # the lock order of registry/locking.py: the model, then the rule
    rule = RetrainRule.objects.select_for_update(no_key=True).get(pk=rule.pk)
    rule.model = model
    now = max(now or timezone.now(), timezone.now())
    serving = _serving_version(model)
    request = RetrainRequest.objects.create(
        rule=rule, model=model, trigger=rule.trigger, reason=reason[:5000], suggested_bump=bump,
        suggested_semver=_suggested(model, bump),
        details={**(details or {}), "serving_version": serving.number if serving else None})
    rule.last_fired_at = now
    if rule.trigger == RetrainTrigger.SCHEDULE:
        rule.next_due_at = next_due(rule.cron, now)
    rule.save(update_fields=["last_fired_at", "next_due_at"])
    events.emit("model.retrain_requested", actor=actor, target=model, data={
        "request": request.pk, "rule": rule.pk, "trigger": rule.trigger, "reason": request.reason,
        "suggested_bump": bump, "suggested_semver": request.suggested_semver, "details": request.details})
    return request


def retrain_schedules_tick(*, now: datetime | None = None) -> int:
    """Fire every schedule rule that is due (beat); return how many fired."""
    now = now or timezone.now()
    fired = 0
    due = RetrainRule.objects.filter(trigger=RetrainTrigger.SCHEDULE, enabled=True, next_due_at__lte=now)
    for rule in due.select_related("model"):
        retrain_fire(rule=rule, reason=f"Scheduled retraining ({rule.cron}) is due.", bump="patch",
                     details={"cron": rule.cron, "due_at": rule.next_due_at.isoformat()}, now=now)
        fired += 1
    return fired


def _on_new_dataset(node: LineageNode) -> int:
    """Fire new-data rules of models whose serving version was trained on an earlier version of `node`'s dataset."""
    fired = 0
    for rule in RetrainRule.objects.filter(trigger=RetrainTrigger.NEW_DATA, enabled=True).select_related("model"):
        serving = _serving_version(rule.model)
        if serving is None:
            continue
        trained_on = LineageNode.objects.filter(
            kind=NodeKind.DATASET, name=node.name,
            pk__in=LineageEdge.objects.filter(kind=EdgeKind.TRAINED_ON, downstream__model_version=serving)
            .values("upstream_id")).exclude(pk=node.pk)
        old = trained_on.first()
        if old is None:
            continue
        schema_changed = bool(old.schema and node.schema and old.schema != node.schema)
        bump = "major" if schema_changed else "minor"
        what = f"{node.name} {node.version or node.digest[:12]}".strip()
        reason = (f"A new version of dataset {what} was registered; version {serving.number} was trained on "
                  f"{old.version or old.digest[:12] or 'an earlier version'}."
                  + (" Its schema changed, so the signature will change: a major release." if schema_changed else ""))
        retrain_fire(rule=rule, reason=reason, bump=bump,
                     details={"dataset": node.name, "new_node": node.pk, "trained_on_node": old.pk,
                              "schema_changed": schema_changed})
        fired += 1
    return fired


def _on_degradation(event: events.DomainEvent) -> int:
    data = event.data
    if event.action == "deployment.analysis_recorded" and data.get("verdict") != "failed":
        return 0
    model_id = data.get("model_id")
    if not isinstance(model_id, int):
        return 0
    fired = 0
    for rule in RetrainRule.objects.filter(model_id=model_id, trigger=RetrainTrigger.DEGRADATION, enabled=True):
        key = f"{event.target_type}:{event.target_id}"
        if RetrainRequest.objects.filter(rule=rule, details__source=key).exists():
            continue  # one firing per degraded rollout, however many analyses fail
        detail = data.get("reason") or data.get("detail") or "the rollout monitor reported a failure"
        retrain_fire(rule=rule, bump="minor", reason=(
            f"The rollout monitor reported degradation on endpoint {data.get('endpoint', '?')} "
            f"(version {data.get('version_number', '?')}): {detail}"),
            details={"source": key, "endpoint": data.get("endpoint"), "action": event.action})
        fired += 1
    return fired


def on_domain_event_committed(sender: Any, event: events.DomainEvent, **kwargs: Any) -> None:
    """Evaluate data and degradation triggers after the event that may fire them has committed."""
    try:
        _evaluate(event)
    except Exception:  # the event has committed; a trigger failure must not turn it into an error for the caller
        log.exception("evaluating versioning triggers for %s failed", event.action)


def _evaluate(event: events.DomainEvent) -> None:
    if event.action == "lineage_node.created" and event.data.get("kind") == NodeKind.DATASET:
        node = LineageNode.objects.filter(pk=event.target_id).first()
        if node is not None:
            _on_new_dataset(node)
    elif event.action in DEGRADATION_ACTIONS:
        _on_degradation(event)


def retrain_rules_for(*, model: RegisteredModel) -> list[RetrainRule]:
    """Return a model's versioning triggers."""
    return list(RetrainRule.objects.filter(model=model).order_by("pk"))


def retrain_requests_for(*, model: RegisteredModel, limit: int = 20) -> list[RetrainRequest]:
    """Return a model's latest retrain requests, newest first."""
    return list(RetrainRequest.objects.filter(model=model).order_by("-created_at", "-pk")[:limit])
