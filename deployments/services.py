"""Every write of the deployments app: environments, endpoints, rollouts and their manual controls, outcomes.

Each service takes the acting user, locks the endpoint it changes, checks permission and state, writes, rewrites
the endpoint's routing snapshot (bumping its generation and recording the change in the routing history), and
emits one domain event, which the audit trail records in the same transaction.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import permissions
from deployments import routing as routing_rules
from deployments.models import ACTIVE_PHASES, Deployment, Endpoint, Environment, Outcome, Phase, RoutingRecord, Strategy
from registry import events
from registry import permissions as registry_permissions
from registry import services as registry_services
from registry.errors import AlreadyExists, DomainError, Forbidden, InvalidInput, InvalidState, NotFound
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, NodeKind
from registry.models import (
    Artifact,
    ArtifactFormat,
    ModelVersion,
    RegisteredModel,
    Role,
    Stage,
    VersionSignature,
    VersionStatus,
)
from registry.pipeline.selectors import CLEAN, version_scan_status
from registry.pipeline.signing import signature_verify, version_signature_status

DEFAULT_ANALYSIS: dict[str, Any] = {
    "window_seconds": 60,  # traffic an analysis looks at (and the least time a step waits before judging)
    "min_requests": 20,  # fewer candidate requests than this: inconclusive
    "max_error_rate": 0.05,
    "max_p95_ms": 250.0,
    "max_p99_ms": 1000.0,
    "max_label_psi": 0.25,  # class prediction distribution shift against the stable version (PSI)
    "max_ks_statistic": 0.3,  # numeric prediction shift against the stable version (two-sample KS statistic)
    "min_agreement": 0.9,  # shadow: share of mirrored rows whose answer matches the stable version's
    "failure_limit": 0,  # failed analyses tolerated before the rollout is rolled back
}
DEFAULT_CANARY_STEPS: list[dict[str, Any]] = [
    {"set_weight": 10}, {"pause": {"duration": 60}}, {"analysis": {}},
    {"set_weight": 50}, {"pause": {"duration": 60}}, {"analysis": {}},
]
MAX_STEPS = 50


# ------------------------------------------------------------------------------------------ environments


@transaction.atomic
def environment_create(*, actor, name: str, description: str = "", requires_promotion: bool = False,
                       follow_alias: str = "", follow_stage: str = "") -> Environment:
    """Define an environment (staff only); production-like ones may require an executed promotion request."""
    if not permissions.can_manage_environments(actor):
        raise Forbidden("Only staff may define environments.")
    name = _slug(name, "Environment name", 64)
    if follow_alias:
        from registry import validation

        follow_alias = validation.alias_name(follow_alias)
    if follow_stage and follow_stage not in (Stage.STAGING, Stage.PRODUCTION):
        raise InvalidInput("follow_stage must be Staging or Production (or empty).")
    if Environment.objects.filter(name=name).exists():
        raise AlreadyExists(f"Environment {name!r} already exists.")
    try:
        with transaction.atomic():
            env = Environment.objects.create(name=name, description=_text(description, "Description", 5000),
                                             requires_promotion=bool(requires_promotion), follow_alias=follow_alias,
                                             follow_stage=follow_stage)
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise AlreadyExists(f"Environment {name!r} already exists.")
    events.emit("environment.created", actor=actor, target=env, data={
        "name": name, "requires_promotion": env.requires_promotion, "follow_alias": follow_alias,
        "follow_stage": follow_stage})
    return env


# --------------------------------------------------------------------------------------------- endpoints


@transaction.atomic
def endpoint_create(*, actor, name: str, environment: Environment, model: RegisteredModel,
                    description: str = "") -> Endpoint:
    """Create an empty serving slot for `model` in `environment` (maintainers of the model)."""
    if not registry_permissions.can_view(actor, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    if not registry_permissions.can_maintain(actor, model):
        raise Forbidden(f"You need the maintainer role on model {model.name!r} to create an endpoint for it.")
    name = _slug(name, "Endpoint name", 100)
    if Endpoint.objects.filter(name=name).exists():
        raise AlreadyExists(f"Endpoint {name!r} already exists.")
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(name=name, environment=environment, model=model, created_by=actor,
                                               description=_text(description, "Description", 5000))
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise AlreadyExists(f"Endpoint {name!r} already exists.")
    events.emit("endpoint.created", actor=actor, target=endpoint, data={
        **_scope(endpoint), "endpoint": name, "environment": environment.name})
    return endpoint


# ------------------------------------------------------------------------------------- what can be served


def servable_route(version: ModelVersion, *, require_signature: bool = True) -> dict[str, Any]:
    """Return the routing entry for serving `version`, or raise InvalidInput saying why it may not be served.

    Only ONNX files are served, and only from a version whose every file scanned clean and (unless the caller
    only previews) whose signed tree verifies.
    """
    label = f"version {version.number} of {version.model.name!r}"
    if version.status != VersionStatus.READY:
        raise InvalidInput(f"{label} is not ready ({version.status}).")
    onnx = [a for a in Artifact.objects.filter(version=version, format=ArtifactFormat.ONNX).order_by("path")]
    if not onnx:
        raise InvalidInput(f"{label} has no ONNX file; convert its scikit-learn file to ONNX (or upload one) "
                           "before deploying it.")
    artifact = next((a for a in onnx if a.path.rsplit("/", 1)[-1] == "model.onnx"), onnx[0])
    scan = version_scan_status(version=version)
    if scan["status"] != CLEAN:
        raise InvalidInput(f"{label} cannot be served: its files have not all scanned clean. {scan['detail']}")
    if require_signature:
        if VersionSignature.objects.filter(version=version).exists():
            signature_verify(version=version)  # re-hash the stored bytes now: a tampered blob never goes live
        signature = version_signature_status(version=version)
        if signature["status"] != "verified":
            raise InvalidInput(f"{label} cannot go live: its signature is not verified. {signature['detail']}")
    sig = version.signature or {}
    outputs = sig.get("outputs") or []
    return {
        "version_id": version.pk, "number": version.number, "sha256": artifact.blob_id, "path": artifact.path,
        "inputs": [{"name": str(c.get("name", "")), "type": str(c.get("type", ""))} for c in sig.get("inputs") or []],
        "labels": list(outputs[0].get("labels") or []) if outputs and isinstance(outputs[0], dict) else [],
    }


def _route(base: dict[str, Any], weight: int, role: str) -> dict[str, Any]:
    return {**base, "weight": weight, "role": role}


def _routing(deployment: Deployment, stable: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
    """Build the gateway's snapshot for a deployment in its current phase and weight."""
    d = deployment
    out: dict[str, Any] = {"deployment_id": d.pk, "strategy": d.strategy, "phase": d.phase, "routes": [],
                           "shadow": None, "preview": None, "ab": None, "warm": []}
    live = d.phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED)
    if d.phase in (Phase.PROMOTING, Phase.SUCCEEDED):
        out["routes"] = [_route(candidate, 100, "stable")]
        if stable and d.warm_until and d.warm_until > timezone.now():
            out["warm"] = [stable["sha256"]]
            out["warm_until"] = d.warm_until.isoformat()
            out["rollback_route"] = _route(stable, 100, "stable")
        return out
    if not live:  # failed or aborted: back to what served before
        out["routes"] = [_route(stable, 100, "stable")] if stable else []
        return out
    if stable is None:
        out["routes"] = [_route(candidate, 100, "stable")]
        return out
    if d.strategy == Strategy.CANARY:
        out["routes"] = [r for r in (_route(stable, 100 - d.weight, "stable"), _route(candidate, d.weight, "canary"))
                         if r["weight"] > 0]
    elif d.strategy == Strategy.BLUE_GREEN:
        out["routes"] = [_route(stable, 100, "stable")]
        out["preview"] = _route(candidate, 0, "preview")
    elif d.strategy == Strategy.SHADOW:
        out["routes"] = [_route(stable, 100, "stable")]
        out["shadow"] = {**_route(candidate, 0, "shadow"), "percent": d.shadow_percent}
    elif d.strategy == Strategy.AB:
        bases = {stable["version_id"]: stable, candidate["version_id"]: candidate}
        out["routes"] = [_route(bases[a["version_id"]], a["weight"], "stable" if a["version_id"] == stable["version_id"]
                                else f"arm-{i}") for i, a in enumerate(d.arms)]
        out["ab"] = {"header": d.ab_header, "field": d.ab_field}
    else:
        out["routes"] = [_route(candidate, 100, "stable")]
    return out


def _apply_routing(deployment: Deployment, *, actor, reason: str) -> None:
    """Rewrite the endpoint's routing snapshot for the deployment's state; record it in the history."""
    endpoint = deployment.endpoint
    stable = _stored_route(deployment, "stable")
    candidate = _stored_route(deployment, "candidate")
    routing = _routing(deployment, stable, candidate)
    endpoint.generation += 1
    routing["generation"] = endpoint.generation
    endpoint.routing = routing
    endpoint.save(update_fields=["routing", "generation"])
    RoutingRecord.objects.create(endpoint=endpoint, deployment=deployment, generation=endpoint.generation,
                                 routing=routing, reason=reason[:300], actor=actor if _is_user(actor) else None,
                                 at=timezone.now())
    from deployments import serving

    transaction.on_commit(lambda: serving.routing_changed(endpoint.name))


def _stored_route(deployment: Deployment, which: str) -> dict[str, Any] | None:
    """Return the route a deployment captured when it started (so later file changes cannot alter what serves)."""
    return (deployment.analysis.get("_routes") or {}).get(which)


# ------------------------------------------------------------------------------------------- rollouts


def _lock_endpoint(endpoint: Endpoint) -> Endpoint:
    return Endpoint.objects.select_for_update().select_related("environment", "model").get(pk=endpoint.pk)


def _check_deployer(actor, endpoint: Endpoint) -> None:
    if not permissions.can_view_endpoint(actor, endpoint):
        raise NotFound(f"Endpoint {endpoint.name!r} not found.")
    if not permissions.can_deploy(actor, endpoint):
        raise Forbidden(f"You need the maintainer role on model {endpoint.model.name!r} to change what endpoint "
                        f"{endpoint.name!r} serves.")


def _check_promotion(endpoint: Endpoint, version: ModelVersion) -> None:
    """In an environment that requires it, the version must have an executed promotion request to its target."""
    env = endpoint.environment
    if not env.requires_promotion:
        return
    from governance.models import PromotionRequest, PromotionState

    requests = PromotionRequest.objects.filter(version=version, state=PromotionState.EXECUTED)
    if env.follow_alias:
        requests, target = requests.filter(kind="alias", target=env.follow_alias), f"alias @{env.follow_alias}"
    elif env.follow_stage:
        requests, target = requests.filter(kind="stage", target=env.follow_stage), f"stage {env.follow_stage}"
    else:
        target = "a protected target"
    if not requests.exists():
        raise InvalidInput(
            f"Environment {env.name!r} serves only versions promoted through governance: version {version.number} "
            f"of {endpoint.model.name!r} has no executed promotion request to {target}.")


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}.")
    return value


def _clean_steps(steps: Any) -> list[dict[str, Any]]:
    if steps is None:
        return [dict(s) for s in DEFAULT_CANARY_STEPS]
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise InvalidInput(f"Canary steps must be a list of 1 to {MAX_STEPS} steps.")
    out = []
    for i, step in enumerate(steps, 1):
        if not isinstance(step, dict) or len(step) != 1:
            raise InvalidInput(f"Step {i} must be an object with exactly one of set_weight, pause, analysis.")
        (kind, value), = step.items()
        if kind == "set_weight":
            out.append({"set_weight": _int(value, f"Step {i} set_weight", 0, 100)})
        elif kind == "pause":
            if value in (None, {}):
                out.append({"pause": {}})
            elif isinstance(value, dict) and set(value) == {"duration"}:
                out.append({"pause": {"duration": _int(value["duration"], f"Step {i} pause duration (seconds)",
                                                       1, 7 * 86400)}})
            else:
                raise InvalidInput(f"Step {i}: pause takes {{}} (until a person promotes) "
                                   "or {\"duration\": seconds}.")
        elif kind == "analysis":
            out.append({"analysis": _clean_analysis(value or {}, partial=True, where=f"Step {i} analysis")})
        else:
            raise InvalidInput(f"Step {i}: unknown step {kind!r}; use set_weight, pause or analysis.")
    return out


def _clean_analysis(value: Any, *, partial: bool = False, where: str = "Analysis") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object.")
    unknown = set(value) - set(DEFAULT_ANALYSIS)
    if unknown:
        raise InvalidInput(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(DEFAULT_ANALYSIS)}.")
    out = {} if partial else dict(DEFAULT_ANALYSIS)
    for key, raw in value.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
            raise InvalidInput(f"{where}: {key} must be a non-negative number.")
        if key in ("max_error_rate", "min_agreement") and raw > 1:
            raise InvalidInput(f"{where}: {key} is a fraction from 0 to 1.")
        if key in ("window_seconds", "min_requests", "failure_limit"):
            raw = int(raw)
        out[key] = raw
    return out


def _version(endpoint: Endpoint, number: Any, what: str = "version") -> ModelVersion:
    number = _int(number, what.capitalize(), 1, 2**31 - 1)
    version = ModelVersion.objects.select_related("model").filter(model=endpoint.model, number=number).first()
    if version is None:
        raise NotFound(f"Model {endpoint.model.name!r} has no version {number}.")
    return version


@transaction.atomic
def deployment_start(*, actor, endpoint: Endpoint, strategy: str, version: Any, steps: Any = None,
                     analysis: Any = None, shadow_percent: Any = 100, arms: Any = None, ab_header: str = "",
                     ab_field: str = "", keep_warm_seconds: Any = 300, auto_promote: bool = True) -> Deployment:
    """Start rolling `version` out on `endpoint` under `strategy`; validate everything before changing anything."""
    endpoint = _lock_endpoint(endpoint)
    _check_deployer(actor, endpoint)
    if strategy not in Strategy.values:
        raise InvalidInput(f"Unknown strategy {strategy!r}; use one of {', '.join(Strategy.values)}.")
    active = Deployment.objects.filter(endpoint=endpoint, phase__in=ACTIVE_PHASES).first()
    if active is not None:
        raise InvalidState(f"Endpoint {endpoint.name!r} already has a rollout in progress (deployment #{active.pk}, "
                           f"{active.get_strategy_display()}, {active.phase}); promote it fully, abort or roll it "
                           "back first.")
    candidate_version = _version(endpoint, version)
    serving_now = routing_rules.served_route(endpoint.routing)
    stable_version = (ModelVersion.objects.filter(pk=serving_now["version_id"]).first() if serving_now else None)
    if stable_version is not None and stable_version.pk == candidate_version.pk and strategy != Strategy.DIRECT:
        raise InvalidInput(f"Endpoint {endpoint.name!r} already serves version {candidate_version.number}.")
    if stable_version is None and strategy != Strategy.DIRECT:
        raise InvalidInput(f"Endpoint {endpoint.name!r} serves nothing yet, so there is nothing to compare a "
                           f"{Strategy(strategy).label} rollout with; start with a direct deployment.")
    _check_promotion(endpoint, candidate_version)
    # Blue-green previews before the switch; the signature must verify before the version takes live traffic.
    candidate = servable_route(candidate_version, require_signature=True)
    stable = servable_route(stable_version, require_signature=False) if stable_version else None
    analysis_cfg = _clean_analysis(analysis or {})
    d = Deployment(endpoint=endpoint, strategy=strategy, stable_version=stable_version,
                   candidate_version=candidate_version, created_by=actor, auto_promote=bool(auto_promote),
                   keep_warm_seconds=_int(keep_warm_seconds, "keep_warm_seconds", 0, 7 * 86400))
    if strategy == Strategy.CANARY:
        d.steps = _clean_steps(steps)
    elif steps not in (None, []):
        raise InvalidInput("Only canary rollouts take steps.")
    if strategy == Strategy.SHADOW:
        d.shadow_percent = _int(shadow_percent, "shadow_percent", 1, 100)
    if strategy == Strategy.AB:
        d.arms = _clean_arms(endpoint, arms, stable_version, candidate_version)
        d.ab_header = _text(ab_header or "X-Stratum-Key", "ab_header", 100).strip()
        d.ab_field = _text(ab_field, "ab_field", 100).strip()
    elif arms not in (None, []):
        raise InvalidInput("Only A/B rollouts take arms.")
    d.analysis = {**analysis_cfg, "_routes": {"stable": stable, "candidate": candidate}}
    now = timezone.now()
    d.started_at = d.step_started_at = now
    # A blue-green preview waits (pending) for its smoke check; the other strategies take traffic at once.
    d.phase = Phase.PENDING if strategy == Strategy.BLUE_GREEN else Phase.PROGRESSING
    try:
        with transaction.atomic():
            d.save()
    except IntegrityError:
        raise InvalidState(f"Endpoint {endpoint.name!r} already has a rollout in progress.")
    d.endpoint = endpoint
    _lineage_deployed(d, actor)
    events.emit("deployment.started", actor=actor, target=d, data={
        **_scope(endpoint, candidate_version), "deployment": d.pk, "strategy": strategy,
        "from_version": stable_version.number if stable_version else None, "to_version": candidate_version.number,
        "steps": d.steps, "arms": [{k: a[k] for k in ("number", "weight")} for a in d.arms],
        "shadow_percent": d.shadow_percent if strategy == Strategy.SHADOW else None})
    if strategy == Strategy.DIRECT:
        _succeed(d, actor=actor, reason="direct deployment")
    elif strategy == Strategy.CANARY:
        _advance(d, actor=actor, now=now)
        _apply_routing(d, actor=actor, reason=f"canary of version {candidate_version.number} started")
    else:
        _apply_routing(d, actor=actor, reason=f"{d.get_strategy_display()} of version {candidate_version.number} "
                                              "started")
    _evaluate_after_commit(d)
    return d


def _evaluate_after_commit(d: Deployment) -> None:
    """Let the monitor look at a rollout as soon as this change commits (an open pause shows as paused at once)."""
    if d.active:
        from deployments import tasks

        transaction.on_commit(lambda: tasks.rollout_evaluate.delay(d.pk))


def _clean_arms(endpoint: Endpoint, arms: Any, stable: ModelVersion, candidate: ModelVersion) -> list[dict[str, Any]]:
    if arms is None:
        return [{"version_id": stable.pk, "number": stable.number, "weight": 50},
                {"version_id": candidate.pk, "number": candidate.number, "weight": 50}]
    if not isinstance(arms, list) or len(arms) != 2 or not all(isinstance(a, dict) for a in arms):
        raise InvalidInput("An A/B test has exactly two arms: [{\"version\": n, \"weight\": w}, ...] for the version "
                           "served now and the candidate.")
    out = []
    for arm in arms:
        version = _version(endpoint, arm.get("version"), "arm version")
        out.append({"version_id": version.pk, "number": version.number,
                    "weight": _int(arm.get("weight"), "Arm weight", 1, 99)})
    if {a["version_id"] for a in out} != {stable.pk, candidate.pk}:
        raise InvalidInput(f"The arms must be the version served now ({stable.number}) and the candidate "
                           f"({candidate.number}).")
    total = sum(a["weight"] for a in out)
    if total != 100:
        raise InvalidInput(f"Arm weights must add up to 100, not {total}.")
    return out


def _lineage_deployed(d: Deployment, actor) -> None:
    """Record the deployment in the lineage graph: the candidate version deployed_as this endpoint's deployment."""
    version_node, _ = lineage.version_node_ensure(d.candidate_version)
    node = lineage.node_create(actor=registry_permissions.with_delegated_role(actor, d.endpoint.model,
                                                                                Role.CONTRIBUTOR),
                               kind=NodeKind.DEPLOYMENT, model=d.endpoint.model,
                               name=f"{d.endpoint.name}#{d.pk}", version=str(d.candidate_version.number)).obj
    lineage.edge_create(actor=registry_permissions.with_delegated_role(actor, d.endpoint.model, Role.CONTRIBUTOR),
                        upstream=version_node, downstream=node, kind=EdgeKind.DEPLOYED_AS)


# -------------------------------------------------------------------------------------- step machinery


def _advance(d: Deployment, *, actor, now) -> None:
    """Run the canary's instant steps (set_weight) until a step that waits; promote when the steps run out."""
    while d.step_index < len(d.steps):
        step = d.steps[d.step_index]
        if "set_weight" in step:
            d.weight = step["set_weight"]
            d.step_index += 1
            d.step_started_at = now
            continue
        break
    d.save(update_fields=["weight", "step_index", "step_started_at", "updated_at"])


def _next_step(d: Deployment, *, actor, now, reason: str) -> None:
    """Leave the current step and run on; promote fully after the last one."""
    d.step_index += 1
    d.step_started_at = now
    before = d.weight
    _advance(d, actor=actor, now=now)
    events.emit("deployment.step_advanced", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "weight": d.weight,
        "reason": reason})
    if d.step_index >= len(d.steps):
        _succeed(d, actor=actor, reason=f"canary completed its {len(d.steps)} steps")
    elif d.weight != before:
        _apply_routing(d, actor=actor, reason=f"canary weight {before}% → {d.weight}% ({reason})")


def _succeed(d: Deployment, *, actor, reason: str) -> None:
    """Send all traffic to the candidate and let the registry follow; a progressive rollout then stays promoting
    (the old version loaded and warm, so rolling back is instant) until keep_warm_seconds pass."""
    now = timezone.now()
    d.weight = 100
    d.warm_until = now + timedelta(seconds=d.keep_warm_seconds) if d.stable_version_id else None
    follow = _follow_registry(d, actor)
    if follow:
        d.message = follow
    if d.strategy != Strategy.DIRECT and d.warm_until and d.keep_warm_seconds > 0:
        d.phase = Phase.PROMOTING
        d.save(update_fields=["phase", "weight", "warm_until", "message", "updated_at"])
        _apply_routing(d, actor=actor, reason=reason)
        events.emit("deployment.promoting", actor=actor, target=d, data={
            **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
            "version": d.candidate_version.number, "reason": reason, "registry": follow or "unchanged",
            "warm_until": d.warm_until.isoformat()})
        return
    d.phase, d.finished_at = Phase.SUCCEEDED, now
    d.save(update_fields=["phase", "weight", "finished_at", "warm_until", "message", "updated_at"])
    _apply_routing(d, actor=actor, reason=reason)
    events.emit("deployment.succeeded", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number, "reason": reason, "registry": follow or "unchanged"})


def _finish_promotion(d: Deployment, *, actor, reason: str) -> None:
    """End the promoting window: the rollout has succeeded and the old version is released."""
    d.phase, d.finished_at, d.warm_until = Phase.SUCCEEDED, timezone.now(), None
    d.save(update_fields=["phase", "finished_at", "warm_until", "updated_at"])
    _apply_routing(d, actor=actor, reason=reason)
    events.emit("deployment.succeeded", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number, "reason": reason})


def _follow_registry(d: Deployment, actor, version: ModelVersion | None = None) -> str:
    """Move the environment's alias/stage to what now serves, through the governance gate; say what happened."""
    env = d.endpoint.environment
    version = version or d.candidate_version
    notes = []
    delegate = registry_permissions.with_delegated_role(actor, d.endpoint.model, Role.MAINTAINER) \
        if _is_user(actor) else actor
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


def _end(d: Deployment, *, actor, phase: str, action: str, reason: str) -> Deployment:
    """Stop an active rollout and send all traffic back to the stable version."""
    d.phase, d.weight, d.finished_at, d.message = phase, 0, timezone.now(), reason[:2000]
    d.save(update_fields=["phase", "weight", "finished_at", "message", "updated_at"])
    _apply_routing(d, actor=actor, reason=reason)
    events.emit(action, actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "strategy": d.strategy,
        "version": d.candidate_version.number,
        "back_to_version": d.stable_version.number if d.stable_version_id else None, "reason": reason})
    return d


def _locked(deployment: Deployment, actor) -> Deployment:
    endpoint = _lock_endpoint(deployment.endpoint)
    _check_deployer(actor, endpoint) if _is_user(actor) else None
    d = (Deployment.objects.select_related("candidate_version__model", "stable_version")
         .get(pk=deployment.pk))
    d.endpoint = endpoint
    return d


def _require(d: Deployment, phases: tuple[str, ...], action: str) -> None:
    if d.phase not in phases:
        raise InvalidState(f"Deployment #{d.pk} is {d.get_phase_display().lower()}; it cannot be {action}.")


# ------------------------------------------------------------------------------------------ manual controls


@transaction.atomic
def deployment_pause(*, deployment: Deployment, actor, reason: str = "") -> Deployment:
    """Hold a progressing rollout where it is (traffic split unchanged) until someone resumes or promotes it."""
    d = _locked(deployment, actor)
    _require(d, (Phase.PROGRESSING,), "paused")
    d.phase, d.message = Phase.PAUSED, (reason or "paused by hand")[:2000]
    d.save(update_fields=["phase", "message", "updated_at"])
    _apply_routing(d, actor=actor, reason=f"paused: {d.message}")
    events.emit("deployment.paused", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "reason": d.message})
    return d


@transaction.atomic
def deployment_resume(*, deployment: Deployment, actor) -> Deployment:
    """Let a paused rollout go on from its current step (the step's clock restarts)."""
    d = _locked(deployment, actor)
    _require(d, (Phase.PAUSED,), "resumed")
    d.phase, d.step_started_at, d.message = Phase.PROGRESSING, timezone.now(), ""
    d.save(update_fields=["phase", "step_started_at", "message", "updated_at"])
    _apply_routing(d, actor=actor, reason="resumed")
    _evaluate_after_commit(d)
    events.emit("deployment.resumed", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index})
    return d


@transaction.atomic
def deployment_promote(*, deployment: Deployment, actor, full: bool = False) -> Deployment:
    """Move a rollout on by hand: past its current step (canary), or all the way (every strategy, or `full`)."""
    d = _locked(deployment, actor)
    _require(d, (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING), "promoted")
    who = getattr(actor, "username", "the monitor")
    if d.phase == Phase.PROMOTING:  # already switched: release the warm old version now
        events.emit("deployment.promoted", actor=actor, target=d, data={
            **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "full": True})
        _finish_promotion(d, actor=actor, reason=f"promotion finished by {who}")
        return d
    if d.strategy == Strategy.CANARY and not full:
        d.phase, d.message = Phase.PROGRESSING, ""
        d.save(update_fields=["phase", "message", "updated_at"])
        events.emit("deployment.promoted", actor=actor, target=d, data={
            **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "full": False})
        _next_step(d, actor=actor, now=timezone.now(), reason=f"promoted by {who}")
        _evaluate_after_commit(d)
        return d
    if d.strategy == Strategy.BLUE_GREEN:
        _smoke_check(d)
    events.emit("deployment.promoted", actor=actor, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "full": True})
    _succeed(d, actor=actor, reason=f"promoted fully by {who}")
    return d


@transaction.atomic
def deployment_abort(*, deployment: Deployment, actor, reason: str = "") -> Deployment:
    """Stop an active rollout by hand; the stable version takes all traffic again."""
    d = _locked(deployment, actor)
    _require(d, ACTIVE_PHASES, "aborted")
    who = getattr(actor, "username", "the monitor")
    return _end(d, actor=actor, phase=Phase.ABORTED, action="deployment.aborted",
                reason=reason or f"aborted by {who}")


@transaction.atomic
def deployment_rollback(*, deployment: Deployment, actor, reason: str = "") -> Deployment:
    """Roll back in one action: an active rollout returns to its stable version; a finished one is replaced by a
    direct deployment of the last good version it took over from. Returns the deployment now in force."""
    d = _locked(deployment, actor)
    who = getattr(actor, "username", "the monitor")
    if d.active:
        return _end(d, actor=actor, phase=Phase.FAILED, action="deployment.rolled_back",
                    reason=reason or f"rolled back by {who}")
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
    route = _stored_route(d, "stable") or servable_route(previous, require_signature=False)
    back = Deployment.objects.create(
        endpoint=d.endpoint, strategy=Strategy.DIRECT, phase=Phase.PROGRESSING, stable_version=d.candidate_version,
        candidate_version=previous, rollback_of=d, created_by=actor if _is_user(actor) else None,
        keep_warm_seconds=d.keep_warm_seconds, started_at=timezone.now(),
        analysis={**DEFAULT_ANALYSIS, "_routes": {"stable": _stored_route(d, "candidate"), "candidate": route}})
    back.endpoint = d.endpoint
    events.emit("deployment.rolled_back", actor=actor, target=back, data={
        **_scope(d.endpoint, previous), "deployment": back.pk, "rollback_of": d.pk,
        "version": d.candidate_version.number, "back_to_version": previous.number,
        "reason": reason or f"rolled back by {who}"})
    _succeed(back, actor=actor, reason=f"rollback of deployment #{d.pk} to version {previous.number} by {who}")
    return back


# ------------------------------------------------------------------------------------------- the monitor


def _smoke_check(d: Deployment) -> None:
    """Run the candidate on a row synthesised from its signature; raise InvalidState when it cannot answer."""
    from deployments import serving

    route = _stored_route(d, "candidate")
    try:
        serving.smoke_check(route)
    except Exception as error:
        raise InvalidState(f"Smoke check of version {d.candidate_version.number} failed: {error}") from error


@transaction.atomic
def rollout_evaluate(*, deployment: Deployment, now=None) -> Deployment:
    """Let the monitor judge one rollout: advance timed steps, run due analyses, promote or roll back."""
    from deployments import analysis

    now = now or timezone.now()
    d = _locked(deployment, None)
    if d.phase == Phase.PROMOTING:
        if d.warm_until is None or now >= d.warm_until:
            _finish_promotion(d, actor=None, reason="keep-warm window over; the old version is released")
        return d
    if d.phase not in (Phase.PENDING, Phase.PROGRESSING):
        return d
    d.last_evaluated_at = now
    d.save(update_fields=["last_evaluated_at"])
    cfg = {**DEFAULT_ANALYSIS, **{k: v for k, v in d.analysis.items() if not k.startswith("_")}}
    if d.strategy == Strategy.BLUE_GREEN:
        try:
            _smoke_check(d)
        except InvalidState as error:
            return _end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back", reason=error.message)
        analysis.record(d, verdict="passed", metrics={"smoke_check": "passed"},
                        detail=f"Version {d.candidate_version.number} answered a synthesised row.")
        if d.auto_promote:
            _succeed(d, actor=None, reason="blue-green switch after a passed smoke check")
        else:
            _pause_for_person(d, "Smoke check passed; waiting for someone to promote the switch.")
        return d
    if d.strategy in (Strategy.SHADOW, Strategy.AB):
        if d.step_started_at and now - d.step_started_at < timedelta(seconds=cfg["window_seconds"]):
            return d
        run = analysis.analyse(d, cfg, now=now)
        d.step_started_at = now
        d.save(update_fields=["step_started_at"])
        if run.verdict == "failed":
            d.failures += 1
            d.save(update_fields=["failures"])
            if d.failures > cfg["failure_limit"]:
                return _end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back",
                            reason=f"analysis failed: {run.detail}")
        return d
    # Canary: work through the steps that are due.
    while d.phase == Phase.PROGRESSING and d.step_index < len(d.steps):
        step = d.steps[d.step_index]
        started = d.step_started_at or now
        if "pause" in step:
            duration = step["pause"].get("duration")
            if duration is None:
                _pause_for_person(d, "Waiting for someone to promote the next step.")
                break
            if now - started < timedelta(seconds=duration):
                break
            _next_step(d, actor=None, now=now, reason=f"pause of {duration}s over")
            continue
        step_cfg = {**cfg, **step["analysis"]}
        if now - started < timedelta(seconds=step_cfg["window_seconds"]):
            break
        run = analysis.analyse(d, step_cfg, now=now, since=started)
        if run.verdict == "passed":
            _next_step(d, actor=None, now=now, reason="analysis passed")
            continue
        if run.verdict == "inconclusive":
            _pause_for_person(d, f"Analysis inconclusive: {run.detail} A person decides: promote, resume to analyse "
                                 "again, or roll back.")
            break
        d.failures += 1
        d.step_started_at = now
        d.save(update_fields=["failures", "step_started_at"])
        if d.failures > step_cfg["failure_limit"]:
            return _end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back",
                        reason=f"analysis failed at step {d.step_index + 1}: {run.detail}")
        break
    if d.phase == Phase.PROGRESSING and d.step_index >= len(d.steps):
        _succeed(d, actor=None, reason="canary completed its steps")
    return d


def _pause_for_person(d: Deployment, message: str) -> None:
    """Hold a rollout (traffic unchanged) until someone promotes, resumes or rolls it back; say why."""
    d.phase, d.message = Phase.PAUSED, message[:2000]
    d.save(update_fields=["phase", "message", "updated_at"])
    _apply_routing(d, actor=None, reason=f"paused by the monitor: {d.message}"[:300])
    events.emit("deployment.paused", actor=None, target=d, data={
        **_scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "reason": d.message})


def rollouts_evaluate_all(*, now=None) -> int:
    """Evaluate every progressing rollout; return how many were looked at (the beat task's body)."""
    due = list(Deployment.objects.filter(phase__in=(Phase.PENDING, Phase.PROGRESSING, Phase.PROMOTING))
               .select_related("endpoint"))
    for deployment in due:
        rollout_evaluate(deployment=deployment, now=now)
    return len(due)


# ---------------------------------------------------------------------------------------------- outcomes


@transaction.atomic
def outcome_record(*, deployment: Deployment, actor, metric: str, value: Any, key: str | None = None,
                   version: Any = None, request_id: str = "") -> Outcome:
    """Record a business outcome for one A/B arm, found from the caller's key (sticky) or named by version."""
    endpoint = deployment.endpoint
    if not permissions.can_view_endpoint(actor, endpoint):
        raise NotFound(f"Deployment #{deployment.pk} not found.")
    if not permissions.can_report_outcomes(actor, endpoint):
        raise Forbidden(f"You need the contributor role on model {endpoint.model.name!r} to report outcomes.")
    if deployment.strategy != Strategy.AB:
        raise InvalidInput(f"Deployment #{deployment.pk} is a {deployment.get_strategy_display()} rollout; outcomes "
                           "are reported for A/B tests.")
    metric = _text(metric, "metric", 100).strip()
    if not metric:
        raise InvalidInput("metric is required, e.g. \"converted\".")
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput("value must be a finite number (use 0/1 for conversions).")
    arm_ids = {a["version_id"]: a for a in deployment.arms}
    if (key is None) == (version is None):
        raise InvalidInput("Name the arm by exactly one of key (the caller key used at prediction time) or version.")
    if key is not None:
        key = _text(key, "key", 500)
        if not key:
            raise InvalidInput("key must not be empty.")
        arm = routing_rules.route_for_bucket(
            [{"version_id": a["version_id"], "weight": a["weight"]} for a in deployment.arms],
            routing_rules.sticky_bucket(deployment.pk, key))
        version_id = arm["version_id"]
    else:
        number = _int(version, "version", 1, 2**31 - 1)
        match = [vid for vid, a in arm_ids.items() if a["number"] == number]
        if not match:
            raise InvalidInput(f"Version {number} is not an arm of deployment #{deployment.pk}.")
        version_id = match[0]
    outcome = Outcome.objects.create(deployment=deployment, version_id=version_id, metric=metric, value=float(value),
                                     key_hash=routing_rules.key_hash(key) if key else "",
                                     request_id=_text(request_id, "request_id", 32))
    return outcome


# --------------------------------------------------------------------------------------------- helpers


def _scope(endpoint: Endpoint, version: ModelVersion | None = None) -> dict[str, Any]:
    """Audit scope: the model (and version) an event is about, so the model's history shows it."""
    out: dict[str, Any] = {"model_id": endpoint.model_id, "model": endpoint.model.name, "endpoint": endpoint.name}
    if version is not None:
        out["version_number"] = version.number
    return out


def _is_user(actor) -> bool:
    return actor is not None and getattr(actor, "pk", None) is not None


def _slug(value: Any, field: str, max_length: int) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value or "") or len(value) > max_length:
        raise InvalidInput(f"{field} must be lower-case letters, digits and hyphens, starting with a letter or digit "
                           f"(at most {max_length} characters).")
    return value


def _text(value: Any, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters.")
    return value
