"""The one evaluation of a move against its policy: gates, metric rules, freeze windows, quorum and roles.

Explain, request creation, approval and execution all call `evaluate_move`, so what explain says blocks a move is
exactly what execution refuses. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from governance.models import (
    GATE_LABELS,
    Decision,
    PromotionDecision,
    PromotionPolicyVersion,
    PromotionRequest,
    ProtectedTarget,
)
from governance.permissions import is_compliance
from registry.models import ModelVersion, RegisteredModel, Role
from registry.permissions import can_view, has_model_role

from . import checks as gates
from . import freeze
from .checks import FAILED, NOT_AVAILABLE, PASSED, SKIPPED
from .schema import from_protection

ROLE_LABELS = {"reviewer": "reviewer of the model", "compliance": "compliance officer"}
_UNSET: Any = object()


@dataclass
class EffectivePolicy:
    """The policy in force for a protected target: its document and where it comes from."""

    document: dict[str, Any]
    version: PromotionPolicyVersion | None
    source: str  # "target" (its own policy), "default" (the model-wide default) or "protection" (settings only)

    def summary(self) -> dict[str, Any]:
        v = self.version
        return {"source": self.source, "scope": v.scope if v else None, "version": v.number if v else None,
                "sha256": v.sha256 if v else None}


def protection_of(model: RegisteredModel, kind: str, target: str) -> ProtectedTarget | None:
    """Return the protection row of a target (None: not protected; no policy applies)."""
    return gates.protected_target(model, kind, target)


def effective_policy(model: RegisteredModel, kind: str, target: str,
                     protection: ProtectedTarget | None = _UNSET) -> EffectivePolicy | None:
    """Return the policy in force for a target: its own active version, else the model-wide default, else the
    protection settings translated; None when the target is not protected."""
    if protection is _UNSET:
        protection = protection_of(model, kind, target)
    if protection is None:
        return None
    in_force = PromotionPolicyVersion.objects.in_force(model.pk, kind, target)
    if in_force is not None and in_force.document is not None:
        return EffectivePolicy(in_force.document, in_force, "target" if in_force.kind else "default")
    return EffectivePolicy(from_protection(approvals_required=protection.approvals_required,
                                           required_gates=protection.required_gates,
                                           allow_emergency_rollback=protection.allow_emergency_rollback,
                                           metric_rules=protection.metric_rules), None, "protection")


@dataclass
class Verdict:
    """What the policy requires of a move now and what blocks it."""

    policy: EffectivePolicy | None
    gates: list[dict[str, Any]] = field(default_factory=list)
    approvals: dict[str, Any] = field(default_factory=dict)
    freeze: dict[str, Any] = field(default_factory=dict)
    emergency: dict[str, Any] = field(default_factory=dict)
    holder: ModelVersion | None = None

    def blockers(self, *, emergency: bool = False) -> list[dict[str, str]]:
        """Each reason the move cannot happen now; an emergency rollback needs no approvals before it."""
        out = [{"key": g["key"], "reason": f"{g['label']}: {g['detail']}"} for g in self.gates if g["blocking"]]
        if self.policy is not None and not emergency and not self.approvals["met"]:
            out.append({"key": "approvals", "reason": self.approvals["detail"]})
        return out

    @property
    def blocked(self) -> bool:
        return bool(self.blockers())


def evaluate_request(request: PromotionRequest, *, now: datetime | None = None) -> Verdict:
    """Evaluate an existing request's move with the approvals it has collected."""
    return evaluate_move(model=request.model, version=request.version, kind=request.kind, target=request.target,
                         approvers=request_approvers(request), now=now)


def approval_state(request: PromotionRequest) -> dict[str, Any]:
    """Where a request stands against the quorum and roles of the policy in force (the approvals part of the
    evaluation, for the request page)."""
    policy = effective_policy(request.model, request.kind, request.target)
    return _approvals(policy.document if policy else None, request.model, request_approvers(request))


def request_approvers(request: PromotionRequest | None) -> list[Any]:
    """The people whose approval of a request counts: not gone stale (none for no request)."""
    if request is None or request.pk is None:
        return []
    decisions = PromotionDecision.objects.filter(request_id=request.pk, decision=Decision.APPROVE,
                                                 stale_at__isnull=True, reviewer__isnull=False,
                                                 ).select_related("reviewer")
    return [d.reviewer for d in decisions]


def evaluate_move(*, model: RegisteredModel, version: ModelVersion, kind: str, target: str,
                  approvers: Sequence[Any] = (), now: datetime | None = None,
                  protection: ProtectedTarget | None = _UNSET) -> Verdict:
    """Evaluate moving `version` onto a target of `model` now, with `approvers` having approved."""
    now = now or timezone.now()
    policy = effective_policy(model, kind, target, protection)
    document = policy.document if policy else None
    required = set(document["gates"]["required"]) if document else set()
    results = [gates.scan_result(version, "artifact_scan" in required),
               gates.signature_result(version, "signature" in required),
               gates.card_result(version, "model_card" in required)]
    rules = document["metric_rules"] if document else []
    holder = gates.target_holder(model, kind, target)
    if not rules:
        # Nothing to compare is not a failure: a skipped metric gate never blocks, required or not.
        results.append(gates.gate_result("metrics", GATE_LABELS["metrics"], SKIPPED,
                                         "The target's policy names no metrics to compare.", False)
                       | {"required": "metrics" in required})
    else:
        results.extend(metric_result(rule, version, holder, "metrics" in required) for rule in rules)
    windows = document["freeze_windows"] if document else []
    window = freeze.active_window(windows, now)
    if windows:
        detail = (f"Frozen now by {freeze.describe(window)}." if window else
                  f"Not frozen now ({len(windows)} window(s) in the policy).")
        results.append(gates.gate_result("freeze_window", "Outside freeze windows", FAILED if window else PASSED,
                                         detail, True))
    for result in results:
        result["fix"] = gates.fix(result, model, version) if result["status"] in (FAILED, NOT_AVAILABLE) else None
    return Verdict(policy=policy, gates=results, approvals=_approvals(document, model, approvers),
                   freeze={"active": window is not None, "window": freeze.describe(window) if window else None,
                           "windows": [freeze.describe(w) for w in windows], "now": now.isoformat()},
                   emergency=dict(document["emergency_rollback"]) if document else {"allowed": False},
                   holder=holder)


def metric_result(rule: dict[str, Any], candidate: ModelVersion, holder: ModelVersion | None,
                  required: bool) -> dict[str, Any]:
    """One metric rule's answer, with the values it compared (`compared`)."""
    name, higher = rule["metric"], rule["direction"] == "higher"
    value = (candidate.metrics or {}).get(name)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    key = f"metric:{name}"
    compared = {"metric": name, "direction": rule["direction"], "against": rule["against"],
                "candidate": value if numeric else None}
    if rule["against"] == "floor":
        bound = rule["value"]
        label = f"Metric {name} {'at least' if higher else 'at most'} {bound:g}"
        compared["reference"] = bound
        if not numeric:
            return gates.gate_result(key, label, FAILED, f"The candidate has no numeric {name}.", required) | {
                "compared": compared}
        ok = value >= bound if higher else value <= bound
        detail = f"{value:.6g} vs the {'floor' if higher else 'ceiling'} {bound:g}."
        return gates.gate_result(key, label, PASSED if ok else FAILED, detail, required) | {"compared": compared}
    margin = rule.get("margin", 0.0)
    label = f"Metric {name} no worse than the current holder (margin {margin:g})"
    compared |= {"margin": margin, "reference": None, "holder_version": holder.number if holder else None}
    if not numeric:
        return gates.gate_result(key, label, FAILED, f"The candidate has no numeric {name}.", required) | {
            "compared": compared}
    if holder is None or holder.pk == candidate.pk:
        return gates.gate_result(key, label, PASSED, "No current holder to compare against.", required) | {
            "compared": compared}
    current = (holder.metrics or {}).get(name)
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        return gates.gate_result(key, label, PASSED, f"Version {holder.number} has no {name} to compare.",
                                 required) | {"compared": compared}
    compared["reference"] = current
    worse_by = (current - value) if higher else (value - current)
    detail = f"{value:.6g} vs {current:.6g} (v{holder.number}); {'higher' if higher else 'lower'} is better."
    return gates.gate_result(key, label, FAILED if worse_by > margin else PASSED, detail, required) | {
        "compared": compared}


def user_roles(user: Any, model: RegisteredModel) -> set[str]:
    """The policy roles `user` holds on `model` now."""
    held = set()
    if has_model_role(user, model, Role.REVIEWER):
        held.add("reviewer")
    if is_compliance(user) and can_view(user, model):
        held.add("compliance")
    return held


def _approvals(document: dict[str, Any] | None, model: RegisteredModel, approvers: Sequence[Any]) -> dict[str, Any]:
    """Whether the approvals meet the quorum and the roles, each person filling at most one role."""
    if document is None:
        return {"quorum": 0, "count": 0, "approved_by": [], "roles": [], "met": True, "detail": "Not protected."}
    quorum, roles = document["quorum"], document["roles"]
    held = [user_roles(u, model) for u in approvers] if roles else []
    slots = [role for role, count in roles.items() for _ in range(count)]
    filled = _match(slots, held)
    role_rows = [{"role": role, "label": ROLE_LABELS[role], "required": count,
                  "have": sum(1 for s, who in zip(slots, filled, strict=True) if s == role and who is not None)}
                 for role, count in roles.items()]
    for row in role_rows:
        row["met"] = row["have"] >= row["required"]
    count = len(approvers)
    met = count >= quorum and all(r["met"] for r in role_rows)
    missing = [f"{r['required'] - r['have']} more from a {r['label']}" for r in role_rows if not r["met"]]
    detail = (f"{count} of {quorum} approval(s)" + (f"; needs {', '.join(missing)}" if missing else "") + ".")
    return {"quorum": quorum, "count": count, "approved_by": [u.get_username() for u in approvers],
            "roles": role_rows, "met": met, "detail": detail if not met else f"Quorum met: {detail}"}


def _match(slots: list[str], held: list[set[str]]) -> list[int | None]:
    """Assign approvers to role slots (a maximum bipartite matching, Kuhn's augmenting paths); slot → approver."""
    owner: dict[int, int] = {}  # approver index → slot index

    def place(slot: int, seen: set[int]) -> bool:
        for person, roles in enumerate(held):
            if slots[slot] in roles and person not in seen:
                seen.add(person)
                if person not in owner or place(owner[person], seen):
                    owner[person] = slot
                    return True
        return False

    for slot in range(len(slots)):
        place(slot, set())
    by_slot: list[int | None] = [None] * len(slots)
    for person, slot in owner.items():
        by_slot[slot] = person
    return by_slot
