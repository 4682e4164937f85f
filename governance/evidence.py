"""Approval evidence: what each approval of a promotion request saw, how it differs now, and approvals that go stale.

An approval records a snapshot of the facts it was given (the candidate's and the holder's metrics, the card, the
signature, the scan verdicts per file and the scanner, the linked dataset and feature-set versions with any open
erasure obligation, and who holds the target). When any of it changes before the request executes, the approval is
kept but marked stale with the reason, the request returns to review, and execution is refused until the quorum is
met again on the current evidence. Changes are found eagerly (receivers of the domain events queue a check) and
authoritatively at execute time (the snapshot is recomputed under the request's lock).

A snapshot is a flat mapping of field keys to JSON values, so it is stored as it is and compared key by key:
``holder``, ``candidate.metrics.<name>``, ``holder.metrics.<name>``, ``card.revision|state|sha256``,
``signature.digest|status``, ``scan.<path>.sha256|trust|verdict|scanner`` and ``lineage.<kind>:<name>@<version>``
with ``.newer`` and ``.erasure`` beside it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from governance import gates
from governance.models import (
    ACTIVE_STATES,
    Decision,
    ErasureObligation,
    ErasureState,
    ModelCard,
    ObligationStatus,
    PromotionDecision,
    PromotionRequest,
    PromotionState,
)
from registry import events
from registry.errors import InvalidState
from registry.lineage.models import EdgeKind, LineageNode, NodeKind
from registry.locking import model_lock
from registry.models import ModelVersion, RegisteredModel
from registry.pipeline import selectors as pipeline_selectors

F = TypeVar("F", bound=Callable[..., Any])

Snapshot = dict[str, Any]

LINKED_KINDS = (NodeKind.DATASET, NodeKind.FEATURE_SET)
KIND_WORDS = {NodeKind.DATASET: "dataset", NodeKind.FEATURE_SET: "feature set"}

# Domain events after whose commit the evidence of active requests is checked again (model cards: every action).
EVIDENCE_ACTIONS = frozenset({
    "model_version.updated", "model_version.deleted", "model_version.stage_transitioned",
    "model_version_alias.set", "model_version_alias.deleted",
    "model_version.artifact_added", "model_version.artifact_deleted", "model_version.artifact_scanned",
    "model_version.artifact_quarantined", "model_version.artifact_rescanned",
    "artifact_release.approved", "artifact_release.revoked",
    "model_version.signed", "model_version.signature_verified", "model_version.signature_verification_failed",
    "lineage_node.created", "lineage_edge.created",
    "erasure_request.created", "erasure_obligation.resolved", "erasure_request.closed",
})


class ApprovalsStale(InvalidState):
    """A request's approvals no longer hold: the evidence they saw changed, and the quorum is not met again."""

    code = "APPROVALS_STALE"
    status = 409


# ------------------------------------------------------------------------------------------------- snapshot


def snapshot(request: PromotionRequest) -> Snapshot:
    """Return the evidence a decision on `request` rests on now (a fixed number of queries)."""
    version = request.version
    out: Snapshot = {}
    holder = gates.target_holder(request.model, request.kind, request.target)
    out["holder"] = holder.number if holder is not None and holder.pk != version.pk else None
    for name, value in sorted((version.metrics or {}).items()):
        out[f"candidate.metrics.{name}"] = value
    if out["holder"] is not None:
        for name, value in sorted((holder.metrics or {}).items()):
            out[f"holder.metrics.{name}"] = value
    card = ModelCard.objects.filter(version_id=version.pk).values("revision", "state", "sha256").first()
    for key in ("revision", "state", "sha256"):
        out[f"card.{key}"] = card[key] if card else None
    signature = pipeline_selectors.version_signature_status(version=version)
    out["signature.status"] = signature["status"]
    out["signature.digest"] = signature["signature"]["bundle_sha256"] if signature["signature"] else None
    for row in pipeline_selectors.version_scan_status(version=version)["artifacts"]:
        prefix = f"scan.{row['path']}"
        out[f"{prefix}.sha256"] = row["sha256"]
        out[f"{prefix}.trust"] = row["trust"]
        out[f"{prefix}.verdict"] = row["verdict"]
        out[f"{prefix}.scanner"] = row["scanner"] or None
    out.update(_lineage(version))
    return out


def _node_label(kind: str, name: str, version: str, digest: str) -> str:
    return f"{kind}:{name}@{version or digest[:12] or '?'}"


def _lineage(version: ModelVersion) -> Snapshot:
    """The datasets and feature sets the version was trained on (and the datasets behind those feature sets): their
    versions, whether a newer version of each is registered, and whether one has an open erasure obligation."""
    direct = list(LineageNode.objects.filter(
        kind__in=LINKED_KINDS, downstream_edges__kind__in=(EdgeKind.TRAINED_ON, EdgeKind.USES_FEATURES),
        downstream_edges__downstream__model_version_id=version.pk).distinct())
    features = [n.pk for n in direct if n.kind == NodeKind.FEATURE_SET]
    behind = list(LineageNode.objects.filter(
        kind=NodeKind.DATASET, downstream_edges__downstream_id__in=features).distinct()) if features else []
    nodes = {n.pk: n for n in [*direct, *behind]}
    if not nodes:
        return {}
    latest: dict[tuple[str, str], LineageNode] = {}
    for node in LineageNode.objects.filter(kind__in=LINKED_KINDS, name__in={n.name for n in nodes.values()}) \
            .order_by("kind", "name", "-created_at", "-pk").only("pk", "kind", "name", "version", "digest"):
        latest.setdefault((node.kind, node.name), node)
    erased = set(ErasureObligation.objects.filter(
        node_id__in=list(nodes), status=ObligationStatus.PENDING, request__state=ErasureState.OPEN,
    ).values_list("node_id", flat=True))
    out: Snapshot = {}
    for node in sorted(nodes.values(), key=lambda n: (n.kind, n.name, n.version, n.pk)):
        key = "lineage." + _node_label(node.kind, node.name, node.version, node.digest)
        newest = latest.get((node.kind, node.name))
        out[key] = True
        out[f"{key}.newer"] = (newest.version or newest.digest[:12]) if newest and newest.pk not in nodes else None
        out[f"{key}.erasure"] = node.pk in erased
    return out


# ----------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Change:
    """One field of the evidence that differs: its key, a readable label, the value then and now."""

    key: str
    label: str
    then: Any
    now: Any


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _split(key: str) -> tuple[str, str]:
    """Split a scan or lineage key into its subject and its field (paths and names may hold dots)."""
    subject, _, field = key.rpartition(".")
    return subject, field


def _lineage_words(subject: str) -> tuple[str, str, str]:
    kind, _, rest = subject.removeprefix("lineage.").partition(":")
    name, _, version = rest.rpartition("@")
    return KIND_WORDS.get(kind, kind), name, version


def field_label(key: str, request: PromotionRequest, holder: Any) -> str:
    """Name an evidence field for people."""
    if key == "holder":
        return f"holder of {request.target_label}"
    if key.startswith("candidate.metrics."):
        return f"candidate v{request.version.number} metric {key.removeprefix('candidate.metrics.')}"
    if key.startswith("holder.metrics."):
        return f"holder{f' v{holder}' if holder else ''} metric {key.removeprefix('holder.metrics.')}"
    if key.startswith("card."):
        return f"model card {key.removeprefix('card.')}"
    if key.startswith("signature."):
        return {"signature.status": "signature verification", "signature.digest": "signature bundle"}[key]
    if key.startswith("scan."):
        subject, field = _split(key)
        return f"file {subject.removeprefix('scan.')}: {field}"
    if key.startswith("lineage."):
        if key.endswith((".newer", ".erasure")):
            subject, field = _split(key)
            kind, name, version = _lineage_words(subject)
            return f"{kind} {name}@{version}: " + ("newer version" if field == "newer" else "open erasure obligation")
        kind, name, version = _lineage_words(key)
        return f"{kind} {name}@{version} linked"
    return key


def changes(then: Snapshot | None, now: Snapshot, request: PromotionRequest) -> list[Change]:
    """Return every field that differs between an approval's evidence and `now`, in the snapshot's order."""
    if then is None:
        return []
    holder = now.get("holder")
    keys = list(dict.fromkeys([*then, *now]))
    return [Change(key, field_label(key, request, holder), then.get(key), now.get(key))
            for key in keys if then.get(key) != now.get(key)]


def _reason(change: Change, request: PromotionRequest, keys: dict[str, Change]) -> str | None:
    """The sentence that says why an approval went stale because of `change` (None: another change says it)."""
    key, then, now = change.key, change.then, change.now
    if key == "holder":
        target = request.target
        if then is None:
            return f"{target} is now held by v{now}"
        if now is None:
            return f"{target} is no longer held by v{then}"
        return f"{target} moved from v{then} to v{now}"
    if key.startswith("candidate.metrics."):
        name = key.removeprefix("candidate.metrics.")
        return f"candidate metric {name} changed: {_show(then)} → {_show(now)}"
    if key.startswith("holder.metrics."):
        if "holder" in keys:
            return None  # the holder moved: that says it
        return f"holder metric {key.removeprefix('holder.metrics.')} changed: {_show(then)} → {_show(now)}"
    if key == "card.revision":
        if then is None:
            return f"model card written: revision {now}"
        if now is None:
            return "model card removed"
        if "card.sha256" not in keys and "card.state" in keys:
            return None  # a review step, not an edit: the state's reason says it
        return f"card edited: revision {then} → {now}"
    if key == "card.state":
        if then is None or now is None:
            return None
        step = f"card {_show(then).replace('_', ' ')} → {_show(now).replace('_', ' ')}"
        revision = keys.get("card.revision")
        if "card.sha256" in keys or revision is None:
            return step
        return f"{step} (revision {_show(revision.then)} → {_show(revision.now)})"
    if key == "card.sha256":
        return None if "card.revision" in keys else "card content changed"
    if key == "signature.status":
        if now == "failed":
            return "signature verification failed"
        return f"signature {then} → {now}"
    if key == "signature.digest":
        return "version re-signed" if then and now else None
    if key.startswith("scan."):
        subject, field = _split(key)
        path = subject.removeprefix("scan.")
        if field == "sha256":
            if then is None:
                return f"file {path} added"
            return f"file {path} removed" if now is None else f"file {path} changed"
        if f"{subject}.sha256" in keys:
            return None
        if field == "trust":
            return f"rescan quarantined {path}" if now == "quarantined" else f"{path}: {then} → {now}"
        if field == "scanner":
            return f"scanner version {_show(then)} → {_show(now)}"
        return None if f"{subject}.trust" in keys else f"{path} scan verdict {then} → {now}"
    if key.startswith("lineage."):
        if key.endswith(".newer"):
            kind, name, _version = _lineage_words(_split(key)[0])
            return None if now is None else f"newer version of {kind} {name}: {now}"
        if key.endswith(".erasure"):
            if _split(key)[0] in keys:
                return None
            kind, name, version = _lineage_words(_split(key)[0])
            if now:
                return f"{kind} {name}@{version} has an erasure obligation"
            return f"the erasure obligation on {kind} {name}@{version} was resolved"
        kind, name, version = _lineage_words(key)
        return f"{kind} {name}@{version} {'linked' if now else 'no longer linked'}"
    return f"{change.label}: {_show(then)} → {_show(now)}"


def reasons(found: list[Change], request: PromotionRequest) -> list[str]:
    """Say why an approval went stale, one sentence per change that matters (no repeats)."""
    keys = {c.key: c for c in found}
    said = list(dict.fromkeys(r for c in found if (r := _reason(c, request, keys))))
    # Every change counts, even one no sentence above covers (a newer dataset version deleted again): say it plainly.
    return said or [f"{c.label}: {_show(c.then)} → {_show(c.now)}" for c in found]


def _brief(value: Any) -> str:
    """A value for a table cell: digests cut to 12 characters."""
    text = _show(value)
    return f"{text[:12]}…" if len(text) == 64 and all(ch in "0123456789abcdef" for ch in text) else text


def diff_rows(found: list[Change]) -> list[dict[str, str]]:
    """The rows of the page's "what changed since this approval" table: field, then, now."""
    return [{"field": c.label, "then": _brief(c.then), "now": _brief(c.now)} for c in found]


# -------------------------------------------------------------------------------------------- staleness


def live_approvals(request: PromotionRequest) -> QuerySet[PromotionDecision]:
    """The approvals that count towards the quorum: not stale."""
    return request.decisions.filter(decision=Decision.APPROVE, stale_at__isnull=True)


def staleness(request: PromotionRequest) -> tuple[bool, list[str]]:
    """Whether the request is back in review because approvals went stale, and why (from prefetched decisions)."""
    decisions = list(request.decisions.all())
    stale = [d for d in decisions if d.stale_at is not None]
    live = sum(1 for d in decisions if d.decision == Decision.APPROVE and d.stale_at is None)
    if not stale or request.state not in ACTIVE_STATES or live >= request.approvals_required:
        return False, []
    return True, list(dict.fromkeys(r for d in stale for r in d.stale_reasons or []))


def mark_stale(request: PromotionRequest, now: Snapshot, actor: Any) -> list[str]:
    """Mark the live approvals whose evidence differs from `now` stale, return the request to review when the
    quorum no longer holds, and announce it; return the reasons (in the caller's transaction, request locked)."""
    found: list[str] = []
    marked: list[str] = []
    moment = timezone.now()
    for decision in live_approvals(request).order_by("created_at", "pk"):
        differences = changes(decision.evidence, now, request) if decision.evidence is not None else None
        if differences == []:
            continue
        why = reasons(differences, request) if differences else ["approved before Stratum recorded approval evidence"]
        decision.stale_at, decision.stale_reasons = moment, why
        decision.save(update_fields=["stale_at", "stale_reasons"])
        marked.append(decision.reviewer_username)
        found.extend(r for r in why if r not in found)
    if not marked:
        return []
    live = live_approvals(request).count()
    if request.state == PromotionState.APPROVED and live < request.approvals_required:
        request.state = PromotionState.OPEN
        request.save(update_fields=["state", "updated_at"])
    events.emit("promotion.evidence_changed", actor=actor, target=request, data={
        "reasons": found, "stale_approvals": marked, "approvals": live,
        "approvals_required": request.approvals_required, "state": request.state})
    return found


def refresh(request: PromotionRequest, actor: Any) -> Snapshot:
    """Mark approvals stale whose evidence changed (the request is locked by the caller); return the evidence now."""
    now = snapshot(request)
    mark_stale(request, now, actor)
    return now


def record(decision: PromotionDecision, now: Snapshot) -> None:
    """Store what an approval saw."""
    decision.evidence = now
    decision.save(update_fields=["evidence"])


def _lock(request_id: int) -> PromotionRequest | None:
    """Lock as governance's services do: the model first (registry/locking.py), then the request's row."""
    model_id = PromotionRequest.objects.filter(pk=request_id).values_list("model_id", flat=True).first()
    if model_id is None:
        return None
    model_lock(model_id)
    return (PromotionRequest.objects.select_for_update(no_key=True, of=("self",))
            .select_related("model", "version", "requested_by").filter(pk=request_id).first())


@transaction.atomic
def promotion_evidence_check(*, request_id: int, actor: Any = None) -> list[str]:
    """Compare an active request's approvals with the evidence now and mark those that changed stale; return why."""
    request = _lock(request_id)
    if request is None or request.state not in ACTIVE_STATES:
        return []
    return mark_stale(request, snapshot(request), actor)


def refuse_if_stale(request: PromotionRequest) -> None:
    """Refuse to execute a request whose stale approvals have not been replaced by a quorum on current evidence."""
    live = live_approvals(request).count()
    stale = list(request.decisions.filter(stale_at__isnull=False).order_by("created_at", "pk"))
    if not stale or live >= request.approvals_required:
        return
    why = list(dict.fromkeys(r for d in stale for r in d.stale_reasons or []))
    raise ApprovalsStale(
        f"Promotion request #{request.pk} went back to review because its evidence changed since it was approved "
        f"({'; '.join(why)}). It needs {request.approvals_required} approval(s) on the current evidence and has "
        f"{live}.", details={"stale_reasons": why, "approvals": live,
                             "approvals_required": request.approvals_required})


def ensure_current(request: PromotionRequest) -> None:
    """At execute time, under the request's lock: refuse when any counted approval saw other evidence than now."""
    approvals = list(live_approvals(request))
    if not approvals:
        return
    now = snapshot(request)
    why: list[str] = []
    for decision in approvals:
        found = changes(decision.evidence, now, request) if decision.evidence is not None else None
        if found is None:
            why.append(f"the approval of {decision.reviewer_username} recorded no evidence")
        elif found:
            why.extend(reasons(found, request))
    if why:
        why = list(dict.fromkeys(why))
        raise ApprovalsStale(
            f"Promotion request #{request.pk} cannot execute: its evidence changed since it was approved "
            f"({'; '.join(why)}). It goes back to review.", details={"stale_reasons": why})


def rechecked(func: F) -> F:
    """Check the request's evidence in a transaction of its own before `func` runs, so the approvals found stale
    stay marked (and reviewers are told) even when `func` then refuses."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request")
        if request is not None and request.pk is not None:
            promotion_evidence_check(request_id=request.pk)  # what Stratum found, not what the caller did
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- eager checks


def requests_affected(event: events.DomainEvent) -> list[int]:
    """The active requests whose evidence a committed event may have changed: those of its model, or every active
    request when the event names no model (datasets, feature sets and erasure requests are shared)."""
    if event.action not in EVIDENCE_ACTIONS and not event.action.startswith("model_card."):
        return []
    instance = event.instance
    if isinstance(instance, RegisteredModel):
        model_id = instance.pk
    else:
        model_id = getattr(instance, "model_id", None)
    active = PromotionRequest.objects.filter(state__in=ACTIVE_STATES, approvals_required__gt=0)
    if model_id is not None:
        active = active.filter(model_id=model_id)
    return list(active.filter(decisions__decision=Decision.APPROVE, decisions__stale_at__isnull=True)
                .values_list("pk", flat=True).distinct().order_by("pk"))


def approval_diffs(request: PromotionRequest, decisions: list[PromotionDecision]) -> list[dict[str, Any]]:
    """For the request page: each approval, whether it is stale and why, and what changed since it (then → now)."""
    approvals = [d for d in decisions if d.decision == Decision.APPROVE]
    if not approvals:
        return []
    now = snapshot(request)
    out = []
    for decision in approvals:
        found = changes(decision.evidence, now, request)
        out.append({"decision": decision, "stale": decision.stale, "reasons": decision.stale_reasons or [],
                    "recorded": decision.evidence is not None, "rows": diff_rows(found)})
    return out
