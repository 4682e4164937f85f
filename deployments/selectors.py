"""Reads shared by the deployment pages and the API, scoped to what the actor may see."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, FilteredRelation, Q, QuerySet
from django.utils import timezone

from deployments import analysis, permissions, stats
from deployments.models import AnalysisRun, Deployment, Endpoint, Environment, RoutingRecord, TrafficStat
from registry.errors import NotFound
from registry.models import Artifact, ArtifactFormat, ModelVersion, VersionStatus


def environment_list() -> QuerySet[Environment]:
    """Return every environment (their names and rules are not secret to signed-in users)."""
    return Environment.objects.all()


def environment_get(*, name: str) -> Environment:
    """Return one environment by name or raise NotFound."""
    env = Environment.objects.filter(name=name).first()
    if env is None:
        raise NotFound(f"Environment {name!r} not found.")
    return env


def endpoint_list(*, actor, environment: str | None = None, model: str | None = None) -> QuerySet[Endpoint]:
    """Return the endpoints `actor` may see, with their environment and model, in a fixed number of queries."""
    qs = permissions.visible_endpoints(actor).select_related("environment", "model").order_by("name")
    if environment:
        qs = qs.filter(environment__name=environment)
    if model:
        qs = qs.filter(model__name=model)
    return qs


def endpoint_get(*, actor, name: str) -> Endpoint:
    """Return one endpoint the actor may see, or raise NotFound (also for endpoints of models it cannot see)."""
    endpoint = endpoint_list(actor=actor).filter(name=name).first()
    if endpoint is None:
        raise NotFound(f"Endpoint {name!r} not found.")
    return endpoint


def _deployments() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("endpoint__environment", "endpoint__model", "stable_version",
                                             "candidate_version", "created_by", "ended_by")


def deployment_list(*, actor, endpoint: Endpoint | None = None, phase: str | None = None) -> QuerySet[Deployment]:
    """Return the deployments of the endpoints `actor` may see, newest first."""
    qs = _deployments().filter(endpoint__in=permissions.visible_endpoints(actor)).order_by("-created_at", "-pk")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    if phase:
        qs = qs.filter(phase=phase)
    return qs


def deployment_get(*, actor, pk: Any) -> Deployment:
    """Return one deployment the actor may see, or raise NotFound."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound(f"Deployment {pk!r} not found.")
    deployment = deployment_list(actor=actor).filter(pk=pk).first()
    if deployment is None:
        raise NotFound(f"Deployment #{pk} not found.")
    return deployment


def active_deployment(*, endpoint: Endpoint) -> Deployment | None:
    """Return the rollout in progress on an endpoint, if any."""
    from deployments.models import ACTIVE_PHASES

    return _deployments().filter(endpoint=endpoint, phase__in=ACTIVE_PHASES).first()


def analysis_runs(*, deployment: Deployment, limit: int = 50) -> list[AnalysisRun]:
    """Return a deployment's analysis runs, newest first."""
    return list(AnalysisRun.objects.filter(deployment=deployment).order_by("-created_at", "-pk")[:limit])


def routing_history(*, endpoint: Endpoint, limit: int = 100) -> list[RoutingRecord]:
    """Return an endpoint's routing changes, newest first."""
    return list(RoutingRecord.objects.filter(endpoint=endpoint).select_related("actor")
                .order_by("-at", "-pk")[:limit])


def routing_at(*, endpoint: Endpoint, at: datetime) -> RoutingRecord | None:
    """Return the routing in force at time `at` ("what served at time T"), or None before the first deployment."""
    return RoutingRecord.objects.filter(endpoint=endpoint, at__lte=at).order_by("-at", "-pk").first()


CHART_RESOLUTIONS = (10, 60, 300, 3600)  # seconds per chart point: statistics are kept per 10 s
CHART_POINTS = 180  # at most about this many points per line


def chart_resolution(span_seconds: float) -> int:
    """Return the seconds per chart point for a window: 10 s for a short rollout, coarser for a long one."""
    return next((r for r in CHART_RESOLUTIONS if span_seconds / r <= CHART_POINTS), CHART_RESOLUTIONS[-1])


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def traffic_series(*, endpoint: Endpoint, minutes: int = 60, now: datetime | None = None,
                   since: datetime | None = None) -> dict[str, Any]:
    """Return request rate (per minute), error rate, p50/p95 latency (0.1 ms) and agreement per version and role.

    Without `since`: the last `minutes`, one point a minute. With it (a rollout's start): from then to now, with
    points as fine as the window allows (10 s for a two-minute canary), so a short rollout fills the chart.
    """
    now = now or timezone.now()
    if since is None:
        step = 60
        since = (now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    else:
        step = chart_resolution((now - since).total_seconds())
        since = datetime.fromtimestamp(since.timestamp() // step * step, tz=since.tzinfo)
        minutes = max(1, round((now - since).total_seconds() / 60))
    rows = (TrafficStat.objects.filter(endpoint=endpoint, bucket__gte=since)
            .values_list("version__number", "role", "bucket", "requests", "errors", "latency_hist", "compared",
                         "agreed"))
    acc: dict[tuple[int, str], dict[datetime, dict[str, Any]]] = defaultdict(dict)
    for number, role, bucket, requests, errors, hist, compared, agreed in rows:
        bucket = datetime.fromtimestamp(bucket.timestamp() // step * step, tz=bucket.tzinfo)
        point = acc[(number, role)].setdefault(bucket, {"requests": 0, "errors": 0, "hist": [], "compared": 0,
                                                        "agreed": 0})
        point["requests"] += requests
        point["errors"] += errors
        point["hist"] = stats.histogram_merge(point["hist"], hist or [])
        point["compared"] += compared
        point["agreed"] += agreed
    per_minute = 60 / step
    series = []
    for (number, role), points in sorted(acc.items()):
        times = sorted(points)
        series.append({
            "version": number, "role": role,
            "t": [t.isoformat() for t in times],
            "requests_per_min": [round(points[t]["requests"] * per_minute, 1) for t in times],
            "error_rate": [points[t]["errors"] / points[t]["requests"] if points[t]["requests"] else None
                           for t in times],
            "p50_ms": [_ms(stats.histogram_percentile(points[t]["hist"], 50)) for t in times],
            "p95_ms": [_ms(stats.histogram_percentile(points[t]["hist"], 95)) for t in times],
            "agreement": [points[t]["agreed"] / points[t]["compared"] if points[t]["compared"] else None
                          for t in times],
        })
    return {"since": since.isoformat(), "minutes": minutes, "bucket_seconds": step, "series": series}


def deployment_metrics(*, deployment: Deployment) -> dict[str, Any]:
    """Return a rollout's figures since it started, per version (live and shadow), plus A/B outcome comparisons."""
    since = deployment.started_at or deployment.created_at
    figures = analysis.version_metrics(deployment=deployment, since=since, until=deployment.finished_at)
    numbers = {deployment.candidate_version_id: deployment.candidate_version.number}
    if deployment.stable_version_id:
        numbers[deployment.stable_version_id] = deployment.stable_version.number
    for fig in figures.values():
        fig["version"] = numbers.get(fig["version_id"])
        fig.pop("values", None)
    out: dict[str, Any] = {"versions": sorted(figures.values(), key=lambda f: (f["role"], f["version"] or 0))}
    if deployment.strategy == "ab":
        out["outcomes"] = analysis.outcome_comparison(deployment=deployment)
    return out


def maintained_models(*, actor) -> QuerySet:
    """Return the models `actor` may create endpoints for (maintainer role or above), by name."""
    from django.db.models import Exists, OuterRef, Q

    from registry.models import ModelRole, RegisteredModel, Role

    if actor is None or not actor.is_authenticated:
        return RegisteredModel.objects.none()
    if actor.is_staff or actor.is_superuser:
        return RegisteredModel.objects.order_by("name")
    granted = ModelRole.objects.filter(Q(user_id=actor.pk) | Q(group__in=actor.groups.all()),
                                       model_id=OuterRef("pk"), role__gte=Role.MAINTAINER)
    return RegisteredModel.objects.filter(Q(owner_id=actor.pk) | Exists(granted)).order_by("name")


def active_deployments(*, endpoints) -> dict[int, Deployment]:
    """Return the rollout in progress per endpoint id for many endpoints, in one query."""
    from deployments.models import ACTIVE_PHASES

    ids = [e.pk for e in endpoints]
    return {d.endpoint_id: d for d in Deployment.objects.filter(endpoint_id__in=ids, phase__in=ACTIVE_PHASES)
            .select_related("stable_version", "candidate_version")}


def prediction_trace(*, actor, request_id: str) -> dict[str, Any]:
    """What answered request `request_id` within the retention window, and what that version was built from: the
    endpoint, the version and its routing role and generation, the prediction batch, the version's datasets,
    feature sets, code commit, signature digest and approval record. Unknown, expired or hidden ids are NotFound."""
    from django.conf import settings

    from deployments.models import PredictionRecord
    from governance.middleware import REQUEST_ID
    from governance.selectors import version_approvals
    from registry import permissions as registry_permissions
    from registry.errors import InvalidInput
    from registry.lineage.models import EdgeKind, LineageEdge
    from registry.models import VersionSignature

    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise InvalidInput("A request id is 8 to 64 letters, digits, '.', '_', ':' or '-'.")
    cutoff = timezone.now() - timedelta(days=settings.STRATUM_PREDICTION_RETENTION_DAYS)
    # A record holds only its id, time and batch; what answered it is read through the batch, in the same query.
    records = list(PredictionRecord.objects.filter(request_id=request_id, at__gte=cutoff)
                   .select_related("batch__endpoint__environment", "batch__version__model", "batch__deployment",
                                   "batch__node")
                   .order_by("-at", "-pk")[:20])
    models = {r.batch.version.model_id: r.batch.version.model for r in records}  # one check per model, not per row
    visible = {pk for pk, model in models.items() if registry_permissions.can_view(actor, model)}
    records = [r for r in records if r.batch.version.model_id in visible]
    if not records:
        raise NotFound(f"No prediction with request id {request_id!r} in the last "
                       f"{settings.STRATUM_PREDICTION_RETENTION_DAYS} days that you may see.")
    live = next((r for r in records if r.batch.role == "live"), records[0])
    batch = live.batch
    version = batch.version
    feature_sets = [e.upstream for e in LineageEdge.objects.filter(
        downstream__model_version=version, kind=EdgeKind.USES_FEATURES).select_related("upstream")]
    signature = VersionSignature.objects.filter(version=version).order_by("-signed_at", "-pk").first()
    return {
        "request_id": request_id, "at": live.at, "record": live,
        "endpoint": batch.endpoint, "environment": batch.endpoint.environment,
        "version": version, "model": version.model, "routing_role": batch.route_role, "traffic_role": batch.role,
        "routing_generation": batch.generation, "deployment": batch.deployment, "batch": batch.node,
        "also": [r.batch for r in records if r is not live],  # a shadow copy, or an earlier request reusing the id
        "datasets": list(version.datasets.all()), "feature_sets": feature_sets,
        "code": {"repository": version.code_repository, "commit": version.code_commit},
        "signature_digest": signature.bundle_id if signature else None,
        "approvals": version_approvals(version=version),
    }


DEPLOYABLE_LIST_LIMIT = 50


def _deploy_refusals(endpoint: Endpoint, versions: list[ModelVersion]) -> dict[int, str | None]:
    """Why each version may not go live on `endpoint` (in the words the form and the service both show), or None;
    in a fixed number of queries (trust, signatures, file formats), whatever the number of versions.

    Trust comes first: a quarantined version is refused as quarantined, never as "no ONNX file" (a quarantined
    pickle is never converted); a released false positive counts as clean.
    """
    from registry.pipeline.selectors import TrustState, versions_signature_state, versions_trust

    ids = [v.pk for v in versions]
    trust = versions_trust(ids)
    signatures = versions_signature_state(version_ids=ids)
    formats: dict[int, set[str]] = defaultdict(set)
    unscanned: set[int] = set()  # going live needs a verdict on every file, also those served without one (ONNX)
    current = FilteredRelation("scans", condition=Q(scans__blob_id=F("blob_id")))
    for version_id, fmt, scan in (Artifact.objects.filter(version_id__in=ids).annotate(current=current)
                                  .values_list("version_id", "format", "current__pk")):
        formats[version_id].add(fmt)
        if scan is None:
            unscanned.add(version_id)
    refusals: dict[int, str | None] = {}
    for version in versions:
        state = trust.get(version.pk)
        if state is not None and state.state == TrustState.QUARANTINED:
            bad = [f.path for f in state.files if f.state == TrustState.QUARANTINED]
            refusals[version.pk] = f"quarantined ({', '.join(bad)})"
        elif (state is not None and state.state == TrustState.PENDING) or version.pk in unscanned:
            refusals[version.pk] = "its files are still being scanned"
        elif not formats[version.pk]:
            refusals[version.pk] = "it has no files"
        elif version.status == VersionStatus.PENDING:
            refusals[version.pk] = "its registration is not finished"
        elif version.status != VersionStatus.READY:
            refusals[version.pk] = "its registration failed"
        elif ArtifactFormat.ONNX not in formats[version.pk]:
            refusals[version.pk] = "no ONNX file (convert its scikit-learn file to ONNX or upload one)"
        elif signatures[version.pk] == "failed":
            refusals[version.pk] = "its signature does not verify (its files differ from the signed tree, or its " \
                                   "last verification failed)"
        elif signatures[version.pk] != "verified" and endpoint.environment.requires_signature:
            refusals[version.pk] = (f"unsigned, and environment {endpoint.environment.name} requires signed "
                                    "versions")
        else:
            refusals[version.pk] = None
    return refusals


def version_deploy_refusal(*, endpoint: Endpoint, version: ModelVersion) -> str | None:
    """Return why `version` may not go live on `endpoint`, or None (the one place that decides)."""
    return _deploy_refusals(endpoint, [version])[version.pk]


def deployable_versions(*, endpoint: Endpoint, limit: int = DEPLOYABLE_LIST_LIMIT
                        ) -> list[tuple[ModelVersion, str | None]]:
    """Return the endpoint model's newest versions (at most `limit`), each with why it cannot be deployed (or None),
    in a fixed number of queries."""
    versions = list(ModelVersion.objects.filter(model_id=endpoint.model_id).select_related("model")
                    .order_by("-number")[:limit])
    refusals = _deploy_refusals(endpoint, versions)
    return [(v, refusals[v.pk]) for v in versions]


def version_deployed_at(*, actor, version: ModelVersion) -> list[dict[str, Any]]:
    """Where `version` serves now: one row per endpoint (of those `actor` may see) whose live routing sends it
    traffic, mirrors traffic to it (shadow) or previews it (blue-green), with its role and share of live traffic
    and the endpoint's whole split; in two queries, whatever the number of endpoints."""
    endpoints = list(endpoint_list(actor=actor).filter(model_id=version.model_id))
    active = active_deployments(endpoints=endpoints)
    rows = []
    for endpoint in endpoints:
        routing = endpoint.routing or {}
        routes = [r for r in routing.get("routes") or [] if r.get("weight", 0) > 0]
        mine = [r for r in routes if r.get("version_id") == version.pk]
        shadow, preview = routing.get("shadow"), routing.get("preview")
        shares = [{"role": r.get("role") or "stable", "weight": r.get("weight", 0)} for r in mine]
        if shadow and shadow.get("version_id") == version.pk:
            shares.append({"role": "shadow", "weight": 0, "mirrored": shadow.get("percent", 0)})
        if preview and preview.get("version_id") == version.pk:
            shares.append({"role": "preview", "weight": 0})
        if not shares:
            continue
        rows.append({
            "endpoint": endpoint, "environment": endpoint.environment, "shares": shares,
            "weight": sum(s["weight"] for s in shares),
            "split": [{"number": r.get("number"), "weight": r.get("weight", 0), "role": r.get("role") or "stable",
                       "this": r.get("version_id") == version.pk} for r in routes],
            "deployment": active.get(endpoint.pk),
        })
    return sorted(rows, key=lambda row: (row["environment"].name, row["endpoint"].name))


def version_rollouts(*, actor, version: ModelVersion, limit: int = 50) -> list[Deployment]:
    """Return the rollouts that took `version` out (candidate) or started from it (stable), newest first, on the
    endpoints `actor` may see, in one query."""
    return list(deployment_list(actor=actor).filter(Q(candidate_version=version) | Q(stable_version=version))
                [:limit])


# ------------------------------------------------------------------------------- the registry's operations report


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def version_operations(*, version: ModelVersion) -> dict[str, list[dict[str, Any]]]:
    """Report how an already visible version is deployed, what the gateway measured of it, the rollout analyses
    (with their prediction-shift checks) and the monitoring configuration of what serves it now: the registry's
    operations plug point, in five queries whatever the history."""
    from django.conf import settings
    from django.db.models import Max, Min, Sum

    from deployments.services.plans import analysis_config

    rollouts = list(_deployments().filter(Q(candidate_version=version) | Q(stable_version=version))
                    .order_by("created_at", "pk"))
    serving: dict[int, list[str]] = {}
    endpoints = Endpoint.objects.filter(model_id=version.model_id).select_related("environment").order_by("name")
    endpoint_rows = list(endpoints)
    for endpoint in endpoint_rows:
        for route in (endpoint.routing or {}).get("routes") or []:
            if route.get("version_id") == version.pk and route.get("weight"):
                serving.setdefault(endpoint.pk, []).append(f"{route.get('role') or 'route'} {route['weight']}%")
    deployments = [{
        "id": d.pk, "endpoint": d.endpoint.name, "environment": d.endpoint.environment.name,
        "strategy": d.get_strategy_display(), "phase": d.phase, "phase_label": d.phase_label,
        "role": "candidate" if d.candidate_version_id == version.pk else "stable",
        "candidate_version": d.candidate_version.number,
        "stable_version": d.stable_version.number if d.stable_version_id else None,
        "created_by": d.created_by.get_username() if d.created_by_id else None,
        "started_at": _iso(d.started_at), "finished_at": _iso(d.finished_at),
    } for d in rollouts]
    gateway = []
    for row in (TrafficStat.objects.filter(version=version).values("endpoint__name", "role")
                .annotate(requests=Sum("requests"), errors=Sum("errors"), latency=Sum("latency_total_ms"),
                          compared=Sum("compared"), agreed=Sum("agreed"), first=Min("bucket"), last=Max("bucket"))
                .order_by("endpoint__name", "role")):
        requests = row["requests"] or 0
        gateway.append({
            "endpoint": row["endpoint__name"], "role": row["role"], "requests": requests, "errors": row["errors"] or 0,
            "error_rate": (row["errors"] or 0) / requests if requests else None,
            "mean_latency_ms": round(row["latency"] / requests, 1) if requests and row["latency"] is not None
            else None,
            "agreement": row["agreed"] / row["compared"] if row["compared"] else None,
            "since": _iso(row["first"]), "until": _iso(row["last"])})
    analyses = []
    for run in (AnalysisRun.objects.filter(deployment__in=[d.pk for d in rollouts])
                .select_related("deployment__endpoint").order_by("created_at", "pk")):
        metrics = run.metrics or {}
        analyses.append({
            "deployment": run.deployment_id, "endpoint": run.deployment.endpoint.name, "step": run.step_index,
            "verdict": run.verdict, "detail": run.detail, "at": _iso(run.created_at),
            "label_psi": (metrics.get("label_shift") or {}).get("psi"),
            "ks_statistic": (metrics.get("value_shift") or {}).get("statistic")})
    latest_on: dict[str, Deployment] = {d.endpoint.name: d for d in rollouts}
    monitor = ("Celery beat" if settings.REDIS_URL else
               "the embedded monitor thread" if settings.STRATUM_EMBEDDED_MONITOR else "no scheduler configured")
    monitoring = []
    for endpoint in endpoint_rows:
        if endpoint.pk not in serving:
            continue
        d = latest_on.get(endpoint.name)
        monitoring.append({
            "endpoint": endpoint.name, "environment": endpoint.environment.name, "serving": serving[endpoint.pk],
            "deployment": d.pk if d else None, "strategy": d.get_strategy_display() if d else None,
            "phase": d.phase if d else None, "thresholds": analysis_config(d.analysis or {}) if d else None,
            "steps": list(d.steps or []) if d else [],
            "monitor": monitor, "monitor_interval_seconds": settings.STRATUM_ROLLOUT_MONITOR_SECONDS,
            "prediction_retention_days": settings.STRATUM_PREDICTION_RETENTION_DAYS})
    return {"deployments": deployments, "gateway": gateway, "analyses": analyses, "monitoring": monitoring}
