"""Starting a rollout: direct, blue-green, canary, shadow or A/B, with everything checked before anything changes."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import routing as routing_rules
from deployments import selectors
from deployments.models import ACTIVE_PHASES, Deployment, Endpoint, Phase, Strategy
from deployments.services.common import check_deployer, lock_endpoint, scope, whole_number
from deployments.services.plans import clean_analysis, clean_arms, clean_steps, endpoint_version
from deployments.services.routes import routing_apply, servable_route
from deployments.services.transitions import evaluate_after_commit, steps_advance, succeed
from governance import selectors as governance_selectors
from registry import events, validation
from registry import permissions as registry_permissions
from registry.errors import InvalidInput, InvalidState
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, NodeKind
from registry.models import ModelVersion, Role, VersionSignature


@transaction.atomic
def deployment_start(*, actor: Any, endpoint: Endpoint, strategy: str, version: Any, steps: Any = None,
                     analysis: Any = None, shadow_percent: Any = 100, arms: Any = None, ab_header: str = "",
                     ab_field: str = "", keep_warm_seconds: Any = 300, auto_promote: bool = False) -> Deployment:
    """Start rolling `version` out on `endpoint` under `strategy`; validate everything before changing anything.

    A blue-green candidate holds at preview until someone promotes it, unless `auto_promote` lets the monitor switch
    after a passed smoke check."""
    endpoint = lock_endpoint(endpoint)
    # The lineage graph's lock before any event (re-verifying the signature emits one): registry/locking.py.
    lineage.graph_lock()
    check_deployer(actor, endpoint)
    if strategy not in Strategy.values:
        raise InvalidInput(f"Unknown strategy {strategy!r}; use one of {', '.join(Strategy.values)}.")
    active = Deployment.objects.filter(endpoint=endpoint, phase__in=ACTIVE_PHASES).first()
    if active is not None:
        raise InvalidState(f"Endpoint {endpoint.name!r} already has a rollout in progress (deployment #{active.pk}, "
                           f"{active.get_strategy_display()}, {active.phase}); promote it fully, abort or roll it "
                           "back first.")
    candidate_version = endpoint_version(endpoint, version)
    refusal = selectors.version_deploy_refusal(endpoint=endpoint, version=candidate_version)
    if refusal:
        raise InvalidInput(f"Version {candidate_version.number} of {endpoint.model.name!r} cannot be deployed to "
                           f"{endpoint.name!r}: {refusal}.")
    stable_version = _stable_version(endpoint, candidate_version, strategy)
    _check_promotion(endpoint, candidate_version)
    # A signed version's stored bytes are re-hashed before it takes live traffic (blue-green previews first);
    # an unsigned one got here only where the environment does not require signatures.
    signed = VersionSignature.objects.filter(version=candidate_version).exists()
    candidate = servable_route(candidate_version, require_signature=signed)
    stable = servable_route(stable_version, require_signature=False) if stable_version else None
    d = _plan(endpoint, strategy, stable_version, candidate_version, actor=actor, steps=steps, analysis=analysis,
              shadow_percent=shadow_percent, arms=arms, ab_header=ab_header, ab_field=ab_field,
              keep_warm_seconds=keep_warm_seconds, auto_promote=auto_promote)
    d.analysis = {**d.analysis, "_routes": {"stable": stable, "candidate": candidate}}
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
        **scope(endpoint, candidate_version), "deployment": d.pk, "strategy": strategy,
        "from_version": stable_version.number if stable_version else None, "to_version": candidate_version.number,
        "steps": d.steps, "arms": [{k: a[k] for k in ("number", "weight")} for a in d.arms],
        "shadow_percent": d.shadow_percent if strategy == Strategy.SHADOW else None})
    if strategy == Strategy.DIRECT:
        succeed(d, actor=actor, reason="direct deployment")
    elif strategy == Strategy.CANARY:
        steps_advance(d, now=now)
        routing_apply(d, actor=actor, reason=f"canary of version {candidate_version.number} started")
    else:
        routing_apply(d, actor=actor, reason=f"{d.get_strategy_display()} of version {candidate_version.number} "
                                             "started")
    evaluate_after_commit(d)
    return d


def _stable_version(endpoint: Endpoint, candidate: ModelVersion, strategy: str) -> ModelVersion | None:
    """Return the version the endpoint serves now (what a progressive rollout compares with), checking there is one."""
    serving_now = routing_rules.served_route(endpoint.routing)
    stable = ModelVersion.objects.filter(pk=serving_now["version_id"]).first() if serving_now else None
    if stable is not None and stable.pk == candidate.pk and strategy != Strategy.DIRECT:
        raise InvalidInput(f"Endpoint {endpoint.name!r} already serves version {candidate.number}.")
    if stable is None and strategy != Strategy.DIRECT:
        raise InvalidInput(f"Endpoint {endpoint.name!r} serves nothing yet, so there is nothing to compare a "
                           f"{Strategy(strategy).label} rollout with; start with a direct deployment.")
    return stable


def _plan(endpoint: Endpoint, strategy: str, stable: ModelVersion | None, candidate: ModelVersion, *, actor: Any,
          steps: Any, analysis: Any, shadow_percent: Any, arms: Any, ab_header: str, ab_field: str,
          keep_warm_seconds: Any, auto_promote: bool) -> Deployment:
    """Return the unsaved deployment with the strategy's settings checked; settings of other strategies refused."""
    analysis_cfg = clean_analysis(analysis or {})
    d = Deployment(endpoint=endpoint, strategy=strategy, stable_version=stable, candidate_version=candidate,
                   created_by=actor, auto_promote=bool(auto_promote),
                   keep_warm_seconds=whole_number(keep_warm_seconds, "keep_warm_seconds", 0, 7 * 86400))
    if strategy == Strategy.CANARY:
        d.steps = clean_steps(steps)
    elif steps not in (None, []):
        raise InvalidInput("Only canary rollouts take steps.")
    if strategy == Strategy.SHADOW:
        d.shadow_percent = whole_number(shadow_percent, "shadow_percent", 1, 100)
    if strategy == Strategy.AB:
        d.arms = clean_arms(endpoint, arms, stable, candidate)
        d.ab_header = validation.text(ab_header or "X-Stratum-Key", "ab_header", 100).strip()
        d.ab_field = validation.text(ab_field, "ab_field", 100).strip()
    elif arms not in (None, []):
        raise InvalidInput("Only A/B rollouts take arms.")
    d.analysis = analysis_cfg
    return d


def _check_promotion(endpoint: Endpoint, version: ModelVersion) -> None:
    """In an environment that requires it, the version must have an executed promotion request to its target."""
    env = endpoint.environment
    if not env.requires_promotion:
        return
    if env.follow_alias:
        kind, name, target = "alias", env.follow_alias, f"alias @{env.follow_alias}"
    elif env.follow_stage:
        kind, name, target = "stage", env.follow_stage, f"stage {env.follow_stage}"
    else:
        kind, name, target = None, None, "a protected target"
    if not governance_selectors.version_was_promoted(version=version, kind=kind, target=name):
        raise InvalidInput(
            f"Environment {env.name!r} serves only versions promoted through governance: version {version.number} "
            f"of {endpoint.model.name!r} has no executed promotion request to {target}.")


def _lineage_deployed(d: Deployment, actor: Any) -> None:
    """Record the deployment in the lineage graph: the candidate version deployed_as this endpoint's deployment."""
    delegate = registry_permissions.with_delegated_role(actor, d.endpoint.model, Role.CONTRIBUTOR)
    version_node, _ = lineage.version_node_ensure(d.candidate_version)
    node = lineage.node_create(actor=delegate, kind=NodeKind.DEPLOYMENT, model=d.endpoint.model,
                               name=f"{d.endpoint.name}#{d.pk}", version=str(d.candidate_version.number)).obj
    lineage.edge_create(actor=delegate, upstream=version_node, downstream=node, kind=EdgeKind.DEPLOYED_AS)
