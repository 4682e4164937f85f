"""Governance reads shared by pages and APIs, scoped to the actor: requests, the inbox, audit, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from governance import gates, permissions
from governance.models import (
    AuditEvent,
    CardState,
    ModelCard,
    PromotionDecision,
    PromotionRequest,
    PromotionState,
    ProtectedTarget,
    TargetKind,
)
from registry.compare import selectors as compare_selectors
from registry.errors import InvalidInput, NotFound
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.permissions import visible_models

HISTORY_ACTIONS = ("model_version_alias.set", "model_version_alias.deleted", "model_version.stage_transitioned",
                   "model_version.deleted")


# ------------------------------------------------------------------------------------ promotion requests


def _request_queryset() -> QuerySet[PromotionRequest]:
    return PromotionRequest.objects.select_related("model", "version", "version__creator", "requested_by") \
        .prefetch_related(Prefetch("decisions", queryset=PromotionDecision.objects.order_by("created_at", "pk")))


def promotion_list(*, actor, state: str | None = None, model: RegisteredModel | None = None
                   ) -> QuerySet[PromotionRequest]:
    """Return the promotion requests on models `actor` may see, newest first, optionally by state or model."""
    qs = _request_queryset().filter(model__in=visible_models(actor))
    if state:
        if state not in PromotionState.values:
            raise InvalidInput(f"Unknown state {state!r}; use one of {', '.join(PromotionState.values)}.")
        qs = qs.filter(state=state)
    if model is not None:
        qs = qs.filter(model=model)
    return qs.order_by("-created_at", "-pk")


def promotion_inbox(*, actor) -> QuerySet[PromotionRequest]:
    """Return the open requests `actor` may decide and has not decided yet, oldest first."""
    decided = PromotionDecision.objects.filter(request_id=OuterRef("pk"), reviewer_id=actor.pk, stale_at__isnull=True)
    return (
        _request_queryset()
        .filter(state=PromotionState.OPEN, model__in=permissions.reviewable_models(actor))
        .exclude(requested_by_id=actor.pk)
        .exclude(version__creator_id=actor.pk)
        .exclude(Exists(decided))
        .order_by("created_at", "pk")
    )


def card_review_inbox(*, actor) -> QuerySet[ModelCard]:
    """Return the cards in review that `actor` may approve or return (per each model's policy), oldest first."""
    return (ModelCard.objects.select_related("model", "version", "submitted_by")
            .filter(permissions.card_reviewable_filter(actor), state=CardState.IN_REVIEW)
            .exclude(submitted_by_id=actor.pk)
            .order_by("updated_at", "pk"))


def review_waiting_count(*, actor) -> int:
    """Count the promotion requests and model cards waiting for `actor`, in one query."""
    if actor is None or not actor.is_authenticated:
        return 0
    requests = promotion_inbox(actor=actor).order_by().values("pk")
    cards = card_review_inbox(actor=actor).order_by().values("pk")
    return requests.union(cards, all=True).count()


def people_with_role(*, model: RegisteredModel, role: int) -> QuerySet:
    """Return the active users holding at least `role` on `model` (owner, direct or group grants), by name."""
    from django.contrib.auth import get_user_model

    from registry.models import ModelRole

    grants = ModelRole.objects.filter(model_id=model.pk, role__gte=role)
    return (get_user_model().objects.filter(is_active=True)
            .filter(Q(pk=model.owner_id) | Q(pk__in=grants.filter(user__isnull=False).values("user_id"))
                    | Q(groups__in=grants.filter(group__isnull=False).values("group_id")))
            .distinct().order_by("username"))


def promotion_reviewers(*, version: ModelVersion, requester) -> list:
    """Return who may decide a request for `version` opened by `requester` (the four-eyes rule applied)."""
    from registry.models import Role

    excluded = {getattr(requester, "pk", None), version.creator_id}
    return [u for u in people_with_role(model=version.model, role=Role.REVIEWER) if u.pk not in excluded]


def card_reviewers(*, card: ModelCard) -> list:
    """Return who may approve or return `card` under its model's policy (never its submitter)."""
    from django.contrib.auth import get_user_model

    from governance.models import CardApprovers
    from registry.models import Role

    policy = permissions.review_policy(card.model)
    people: dict[int, Any] = {}
    if policy.card_approvers in (CardApprovers.REVIEWERS, CardApprovers.BOTH):
        people.update({u.pk: u for u in people_with_role(model=card.model, role=Role.REVIEWER)})
    if policy.card_approvers in (CardApprovers.COMPLIANCE, CardApprovers.BOTH):
        viewers = people_with_role(model=card.model, role=Role.VIEWER).values("pk")
        compliance = get_user_model().objects.filter(
            is_active=True, groups__name=permissions.COMPLIANCE_GROUP, pk__in=viewers).distinct()
        people.update({u.pk: u for u in compliance})
    people.pop(card.submitted_by_id, None)
    return sorted(people.values(), key=lambda u: u.get_username())


def promotion_get(*, actor, pk: int | str) -> PromotionRequest:
    """Return one request on a model `actor` may see, or raise NotFound."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise NotFound(f"No promotion request {pk!r}.")
    request = _request_queryset().filter(pk=number, model__in=visible_models(actor)).first()
    if request is None:
        raise NotFound(f"No promotion request #{number}.")
    return request


def version_was_promoted(*, version: ModelVersion, kind: str | None = None, target: str | None = None) -> bool:
    """True when an executed promotion request moved `version` (onto `kind`/`target` when given)."""
    requests = PromotionRequest.objects.filter(version=version, state=PromotionState.EXECUTED)
    if kind is not None:
        requests = requests.filter(kind=kind, target=target)
    return requests.exists()


def protected_target_list(*, model: RegisteredModel) -> QuerySet[ProtectedTarget]:
    """Return the protected targets of a visible model."""
    return ProtectedTarget.objects.filter(model=model).order_by("kind", "name")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Comparison:
    """The candidate against the current holder: metric deltas, params, datasets and code."""

    holder: ModelVersion | None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    code: list[dict[str, Any]] = field(default_factory=list)


def metric_delta(candidate: Any, holder: Any, higher_is_better: bool) -> dict[str, Any]:
    """Return the candidate's change against the holder and whether it is better, worse or the same by the metric's
    direction ({"delta", "higher_is_better", "verdict"}; verdict None when either side is not a number)."""
    if not (_numeric(candidate) and _numeric(holder)):
        return {"delta": None, "higher_is_better": higher_is_better, "verdict": None}
    delta = candidate - holder
    gain = delta if higher_is_better else -delta
    tolerance = 1e-12 * max(abs(candidate), abs(holder), 1.0)
    verdict = "same" if abs(gain) <= tolerance else ("better" if gain > 0 else "worse")
    return {"delta": delta, "higher_is_better": higher_is_better, "verdict": verdict}


def promotion_comparison(*, request: PromotionRequest) -> Comparison:
    """Compare the request's version with whatever holds its target now (or held it before execution)."""
    candidate = request.version
    holder = None
    if request.state == PromotionState.EXECUTED and request.holder_version_number:
        holder = ModelVersion.objects.filter(model_id=request.model_id, number=request.holder_version_number).first()
    elif request.state != PromotionState.EXECUTED:
        holder = gates.target_holder(request.model, request.kind, request.target)
    if holder is not None and holder.pk == candidate.pk:
        holder = None
    comparison = Comparison(holder=holder)
    cand_m, hold_m = candidate.metrics or {}, (holder.metrics if holder else {}) or {}
    policy = gates.protected_target(request.model, request.kind, request.target)
    directions = {str(r.get("metric")): bool(r.get("higher_is_better", True)) for r in
                  ((policy.metric_rules or []) if policy else [])}
    for name in sorted(set(cand_m) | set(hold_m)):
        c, h = cand_m.get(name), hold_m.get(name)
        higher = directions.get(name, compare_selectors.higher_is_better(name))
        comparison.metrics.append({"name": name, "candidate": c, "holder": h, **metric_delta(c, h, higher)})
    cand_p, hold_p = candidate.params or {}, (holder.params if holder else {}) or {}
    for name in sorted(set(cand_p) | set(hold_p)):
        comparison.params.append({"name": name, "candidate": cand_p.get(name), "holder": hold_p.get(name),
                                  "changed": holder is not None and cand_p.get(name) != hold_p.get(name)})
    datasets: dict[tuple[str, str], dict[str, Any]] = {}
    for side, version in (("candidate", candidate), ("holder", holder)):
        if version is None:
            continue
        for ds in version.datasets.all():
            row = datasets.setdefault((ds.role, ds.name), {"role": ds.role, "name": ds.name})
            row[side] = ds.digest or ds.uri or "—"
    for row in datasets.values():
        row["changed"] = holder is not None and row.get("candidate") != row.get("holder")
    comparison.datasets = sorted(datasets.values(), key=lambda r: (r["role"], r["name"]))
    for label, attr in (("Repository", "code_repository"), ("Commit", "code_commit"), ("Source", "source_uri")):
        c, h = getattr(candidate, attr), getattr(holder, attr) if holder else None
        comparison.code.append({"name": label, "candidate": c, "holder": h,
                                "changed": holder is not None and c != h})
    return comparison


# ------------------------------------------------------------------------------------------------- audit


def audit_list(
    *, actor, model: str | None = None, username: str | None = None, action: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Return the audit events `actor` may read (staff: all; others: their models' and their own), filtered."""
    qs = AuditEvent.objects.all()
    if not (actor.is_staff or actor.is_superuser):
        qs = qs.filter(Q(model_id__in=visible_models(actor).values("pk")) | Q(actor_id=actor.pk))
    if model:
        qs = qs.filter(model_name=model)
    if username:
        qs = qs.filter(actor_username=username)
    if action:
        qs = qs.filter(action=action) if "." in action else qs.filter(action__startswith=f"{action}.")
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lte=until)
    return qs.order_by("-seq")


def audit_actions() -> list[str]:
    """Return the distinct actions recorded so far, for filter menus."""
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


# ----------------------------------------------------------------------------------------------- history


@dataclass
class HistoryState:
    """What held each alias and stage of a model at one moment, and the events that led there."""

    at: datetime | None
    aliases: dict[str, int] = field(default_factory=dict)
    stages: dict[str, list[int]] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)


def model_history(*, model: RegisteredModel, at: datetime | None = None) -> HistoryState:
    """Replay the model's alias and stage events from the audit trail up to `at` (default: now)."""
    qs = AuditEvent.objects.filter(model_id=model.pk, action__in=HISTORY_ACTIONS).order_by("seq")
    if at is not None:
        qs = qs.filter(created_at__lte=at)
    state = HistoryState(at=at)
    stages: dict[int, str] = {}
    for event in qs:
        data, number = event.data or {}, event.version_number
        state.events.append(event)
        if event.action == "model_version_alias.set":
            state.aliases[data.get("alias", "")] = data.get("to_version", number)
        elif event.action == "model_version_alias.deleted":
            state.aliases.pop(data.get("alias", ""), None)
        elif event.action == "model_version.stage_transitioned" and number is not None:
            stages[number] = data.get("to_stage", Stage.NONE)
            for archived in data.get("archived_versions") or []:
                stages[archived] = Stage.ARCHIVED
        elif event.action == "model_version.deleted" and number is not None:
            stages.pop(number, None)
            state.aliases = {name: v for name, v in state.aliases.items() if v != number}
    for number, stage in sorted(stages.items()):
        if stage != Stage.NONE:
            state.stages.setdefault(stage, []).append(number)
    state.aliases = dict(sorted(state.aliases.items()))
    state.events.reverse()
    return state


def holder_sequence(*, model: RegisteredModel, kind: str, target: str) -> list[int]:
    """Return the version numbers that successively moved onto a stage or alias, oldest first."""
    if kind == TargetKind.ALIAS:
        qs = AuditEvent.objects.filter(model_id=model.pk, action="model_version_alias.set", data__alias=target)
    else:
        qs = AuditEvent.objects.filter(model_id=model.pk, action="model_version.stage_transitioned",
                                       data__to_stage=target)
    sequence: list[int] = []
    for number in qs.order_by("seq").values_list("version_number", flat=True):
        if number is not None and (not sequence or sequence[-1] != number):
            sequence.append(number)
    return sequence


def previous_holder(*, model: RegisteredModel, kind: str, target: str) -> ModelVersion | None:
    """Return the version that held the target before its current holder (still registered), or None."""
    current = gates.target_holder(model, kind, target)
    current_number = current.number if current else None
    existing = set(ModelVersion.objects.filter(model=model).values_list("number", flat=True))
    for number in reversed(holder_sequence(model=model, kind=kind, target=target)):
        if number != current_number and number in existing:
            return ModelVersion.objects.select_related("model").get(model=model, number=number)
    return None


def parse_moment(raw: str | None, name: str = "time") -> datetime | None:
    """Parse an ISO-8601 date or datetime (naive means UTC), or raise InvalidInput; blank is None."""
    from datetime import UTC
    from datetime import time as dtime

    from django.utils.dateparse import parse_date, parse_datetime

    if raw in (None, ""):
        return None
    text = str(raw).strip().replace(" ", "T", 1) if "T" not in str(raw) and ":" in str(raw) else str(raw).strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime.combine(day, dtime.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInput(f"{name} must be an ISO-8601 date or time such as 2026-01-31T12:00:00Z, not {raw!r}.")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def version_approvals(*, version: ModelVersion) -> list[dict[str, Any]]:
    """The executed promotion requests that moved `version`, each with its approvals: the version's approval
    record (two queries, whatever the number of requests)."""
    requests = (PromotionRequest.objects.filter(version=version, state=PromotionState.EXECUTED)
                .select_related("requested_by").prefetch_related("decisions").order_by("executed_at", "pk"))
    return [{"id": r.pk, "kind": r.kind, "target": r.target, "executed_at": r.executed_at,
             "requested_by": r.requested_by.get_username() if r.requested_by else None,
             "justification": r.justification,
             "approvals": [{"reviewer": d.reviewer_username, "decision": d.decision, "at": d.created_at,
                            "stale": d.stale_at is not None}
                           for d in r.decisions.all()]} for r in requests]
