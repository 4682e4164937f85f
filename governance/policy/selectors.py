"""Reads of promotion policies shared by the pages and the API: scopes, versions, diffs, and explain."""

from __future__ import annotations

import difflib
from typing import Any

from django.db.models import QuerySet

from governance.models import (
    ACTIVE_STATES,
    DEFAULT_SCOPE,
    PolicyState,
    PromotionPolicyVersion,
    PromotionRequest,
    ProtectedTarget,
    TargetKind,
)
from registry.errors import NotFound
from registry.models import ModelVersion, RegisteredModel

from . import evaluation
from .schema import parse_scope, to_yaml


def policy_scopes(*, model: RegisteredModel) -> list[dict[str, Any]]:
    """Each policy scope of a model (the default, every protected target, every scope with versions) with its
    version in force and the one waiting for approval; two queries whatever the number of scopes."""
    current = list(PromotionPolicyVersion.objects.filter(
        model_id=model.pk, state__in=[PolicyState.ACTIVE, PolicyState.PROPOSED]).order_by("kind", "target"))
    protected = list(ProtectedTarget.objects.filter(model_id=model.pk).order_by("kind", "name"))
    keys = [("", "")] + [(t.kind, t.name) for t in protected]
    keys += [k for k in dict.fromkeys((v.kind, v.target) for v in current) if k not in keys]
    rows = []
    for kind, target in keys:
        versions = [v for v in current if (v.kind, v.target) == (kind, target)]
        rows.append({"scope": f"{kind}:{target}" if kind else DEFAULT_SCOPE, "kind": kind, "target": target,
                     "label": ("Model-wide default" if not kind else
                               f"@{target}" if kind == TargetKind.ALIAS else target),
                     "protected": any((t.kind, t.name) == (kind, target) for t in protected),
                     "active": next((v for v in versions if v.state == PolicyState.ACTIVE), None),
                     "pending": next((v for v in versions if v.state == PolicyState.PROPOSED), None)})
    return rows


def policy_versions(*, model: RegisteredModel, scope: str) -> QuerySet[PromotionPolicyVersion]:
    """Every version of one scope's policy, newest first."""
    kind, target = parse_scope(scope)
    return PromotionPolicyVersion.objects.filter(model_id=model.pk, kind=kind, target=target).order_by("-number")


def policy_version_get(*, model: RegisteredModel, scope: str, number: int) -> PromotionPolicyVersion:
    """Return one version of a scope's policy, or raise NotFound."""
    version = policy_versions(model=model, scope=scope).filter(number=number).select_related("model").first()
    if version is None:
        raise NotFound(f"The policy of {scope} on {model.name!r} has no version {number}.")
    return version


def previous_version(version: PromotionPolicyVersion) -> PromotionPolicyVersion | None:
    """The version this one would replace (or replaced): the active one before it, else the one before it."""
    earlier = PromotionPolicyVersion.objects.filter(model_id=version.model_id, kind=version.kind,
                                                    target=version.target, number__lt=version.number)
    return (earlier.filter(state__in=[PolicyState.ACTIVE, PolicyState.SUPERSEDED]).order_by("-number").first()
            or earlier.order_by("-number").first())


def policy_diff(old: PromotionPolicyVersion | None, new: PromotionPolicyVersion) -> list[dict[str, str]]:
    """The unified diff of two versions' documents as YAML, one row per line with its kind (add, del, hunk,
    context); the template escapes the text."""
    before = to_yaml(old.document).splitlines() if old is not None else []
    after = to_yaml(new.document).splitlines()
    label = f"version {old.number}" if old is not None else "no policy"
    rows = []
    for line in difflib.unified_diff(before, after, fromfile=label, tofile=f"version {new.number}", lineterm=""):
        kind = ("file" if line.startswith(("---", "+++")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "context")
        rows.append({"kind": kind, "text": line})
    return rows


def explain(*, model: RegisteredModel, version: ModelVersion, kind: str, target: str) -> dict[str, Any]:
    """What the policy in force requires for moving `version` onto a target now and what blocks it; reads only.

    It evaluates with the same function execution uses, with the approvals of the open request for this move."""
    request = (PromotionRequest.objects.filter(version_id=version.pk, kind=kind, target=target,
                                               state__in=ACTIVE_STATES).select_related("model", "version").first())
    verdict = evaluation.evaluate_move(model=model, version=version, kind=kind, target=target,
                                       approvers=evaluation.request_approvers(request))
    blockers = verdict.blockers()
    holder = verdict.holder
    pending = (PromotionPolicyVersion.objects.filter(model_id=model.pk, kind__in=[kind, ""],
                                                     target__in=[target, ""], state=PolicyState.PROPOSED)
               .order_by("kind").first())
    return {
        "model": model.name, "version": version.number, "kind": kind, "target": target,
        "protected": verdict.policy is not None,
        "policy": verdict.policy.summary() if verdict.policy else None,
        "document": verdict.policy.document if verdict.policy else None,
        "pending_policy": ({"scope": pending.scope, "version": pending.number, "sha256": pending.sha256}
                           if pending else None),
        "current_holder": holder.number if holder else None,
        "request": ({"id": request.pk, "state": request.state} if request else None),
        "approvals": verdict.approvals,
        "gates": [{k: g.get(k) for k in ("key", "label", "status", "detail", "required", "blocking", "compared")}
                  for g in verdict.gates],
        "freeze": verdict.freeze,
        "emergency_rollback": verdict.emergency,
        "blocked": bool(blockers) if verdict.policy is not None else False,
        "blockers": blockers if verdict.policy is not None else [],
        "summary": _summary(verdict, blockers, kind, target),
    }


def _summary(verdict: evaluation.Verdict, blockers: list[dict[str, str]], kind: str, target: str) -> str:
    label = f"@{target}" if kind == TargetKind.ALIAS else target
    if verdict.policy is None:
        return f"{label} is not protected: the version can be moved directly."
    if not blockers:
        return f"Nothing blocks this move onto {label} now: executing it would succeed."
    return f"Blocked now: {'; '.join(b['reason'] for b in blockers)}"

