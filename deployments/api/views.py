"""Deployment REST API views: validate input, call one selector or service, render. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import analysis, kserve, selectors, services
from deployments.api import serializers as s
from deployments.models import Deployment, Phase
from registry import selectors as registry_selectors
from registry.errors import InvalidInput, NotFound
from registry.pagination import paginate

MAX_TRAFFIC_MINUTES = 1440
ANALYSIS_RUNS_SHOWN = 20


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def _deployment(request: Request, pk: int) -> Deployment:
    return selectors.deployment_get(actor=request.user, pk=pk)


def _deployment_output(deployment: Deployment) -> dict[str, Any]:
    """Render a deployment freshly read back (services hand back partly updated instances)."""
    fresh = Deployment.objects.select_related("endpoint__environment", "endpoint__model", "stable_version",
                                              "candidate_version", "created_by").get(pk=deployment.pk)
    return s.DeploymentOutput(fresh).data


def _deployment_detail(deployment: Deployment) -> dict[str, Any]:
    runs = selectors.analysis_runs(deployment=deployment, limit=ANALYSIS_RUNS_SHOWN)
    data = {**_deployment_output(deployment),
            "analysis_runs": s.AnalysisRunOutput(runs, many=True).data,
            "metrics": selectors.deployment_metrics(deployment=deployment)}
    return data


def _endpoint_detail(endpoint) -> dict[str, Any]:
    active = selectors.active_deployment(endpoint=endpoint)
    endpoint.active_deployment = active.pk if active else None
    return s.EndpointDetailOutput(endpoint).data


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, not {raw!r}.")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, not {value}.")
    return value


def _time_param(raw: str) -> datetime:
    try:
        at = parse_datetime(raw.strip().replace(" ", "+"))  # a bare '+' in a query string arrives as a space
    except ValueError:
        at = None
    if at is None:
        raise InvalidInput(f"at must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not {raw!r}.")
    return at if timezone.is_aware(at) else at.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------ environments


class EnvironmentListCreateApi(APIView):
    """List environments, or define one (staff)."""

    @extend_schema(operation_id="environments_list", responses=s.EnvironmentOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(s.EnvironmentOutput(selectors.environment_list().order_by("name"), many=True).data)

    @extend_schema(request=s.EnvironmentInput, responses={201: s.EnvironmentOutput})
    def post(self, request: Request) -> Response:
        data = _valid(s.EnvironmentInput, request.data)
        env = services.environment_create(actor=request.user, **data)
        return Response(s.EnvironmentOutput(env).data, status=status.HTTP_201_CREATED)


class EnvironmentDetailApi(APIView):
    """Get one environment."""

    @extend_schema(responses=s.EnvironmentOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(s.EnvironmentOutput(selectors.environment_get(name=name)).data)


# --------------------------------------------------------------------------------------------- endpoints


class EndpointListCreateApi(APIView):
    """List the endpoints of visible models, or create one (maintainers of the model)."""

    @extend_schema(operation_id="endpoints_list", responses=s.EndpointOutput(many=True), parameters=[
        OpenApiParameter("environment", str, description="Only endpoints in this environment"),
        OpenApiParameter("model", str, description="Only endpoints serving this model")])
    def get(self, request: Request) -> Response:
        qs = selectors.endpoint_list(actor=request.user, environment=request.query_params.get("environment"),
                                     model=request.query_params.get("model"))
        return Response(s.EndpointOutput(qs, many=True).data)

    @extend_schema(request=s.EndpointInput, responses={201: s.EndpointDetailOutput})
    def post(self, request: Request) -> Response:
        data = _valid(s.EndpointInput, request.data)
        model = registry_selectors.model_get(actor=request.user, name=data["model"])
        environment = selectors.environment_get(name=data["environment"])
        endpoint = services.endpoint_create(actor=request.user, name=data["name"], environment=environment,
                                            model=model, description=data["description"])
        return Response(_endpoint_detail(endpoint), status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    """Get one endpoint with the routing in force and the rollout in progress."""

    @extend_schema(responses=s.EndpointDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(_endpoint_detail(selectors.endpoint_get(actor=request.user, name=name)))


TRAFFIC_OUTPUT = inline_serializer("EndpointTraffic", {
    "since": serializers.DateTimeField(), "minutes": serializers.IntegerField(),
    "series": serializers.ListField(child=serializers.JSONField(),
                                    help_text="Per version and role: t, requests_per_min, error_rate, p50_ms, "
                                              "p95_ms, agreement."),
})


class EndpointTrafficApi(APIView):
    """Per-minute traffic of an endpoint, per version and role."""

    @extend_schema(responses=TRAFFIC_OUTPUT, parameters=[
        OpenApiParameter("minutes", int, description=f"How far back to look, 1..{MAX_TRAFFIC_MINUTES} (default 60)")])
    def get(self, request: Request, name: str) -> Response:
        endpoint = selectors.endpoint_get(actor=request.user, name=name)
        minutes = _int_param(request, "minutes", 60, 1, MAX_TRAFFIC_MINUTES)
        return Response(selectors.traffic_series(endpoint=endpoint, minutes=minutes))


KSERVE_OUTPUT = inline_serializer("KServeInferenceService", {
    "apiVersion": serializers.CharField(), "kind": serializers.CharField(),
    "metadata": serializers.JSONField(), "spec": serializers.JSONField(),
})


class EndpointKServeApi(APIView):
    """The endpoint's live model as a KServe InferenceService (ONNX runtime), to serve it on Kubernetes instead."""

    @extend_schema(
        responses={(200, "application/json"): KSERVE_OUTPUT, (200, "application/yaml"): KSERVE_OUTPUT},
        parameters=[OpenApiParameter("output", str, enum=["json", "yaml"],
                                     description="json (default) or yaml, the form `kubectl apply -f` takes")])
    def get(self, request: Request, name: str) -> Response | HttpResponse:
        output = request.query_params.get("output") or "json"
        if output not in ("json", "yaml"):
            raise InvalidInput(f"output must be json or yaml, not {output!r}.")
        endpoint = selectors.endpoint_get(actor=request.user, name=name)

        def artifact_url(version: Any, path: str) -> str:
            return request.build_absolute_uri(reverse("api-artifact", kwargs={
                "name": version.model.name, "ref": str(version.number), "path": path}))

        service = kserve.endpoint_inference_service(endpoint=endpoint, artifact_url=artifact_url)
        if output == "yaml":
            return HttpResponse(yaml.safe_dump(service, sort_keys=False), content_type="application/yaml")
        return Response(service)


class EndpointHistoryApi(APIView):
    """An endpoint's routing history, or (with ?at=) the routing in force at that time."""

    @extend_schema(
        parameters=[OpenApiParameter("at", str, description="ISO 8601 time: return only the routing in force then")],
        responses={200: s.RoutingRecordOutput(many=True)},
        description="Without `at`: the routing changes, newest first. With `at`: a one-element list holding the "
                    "routing in force at that time (404 when the endpoint served nothing yet).")
    def get(self, request: Request, name: str) -> Response:
        endpoint = selectors.endpoint_get(actor=request.user, name=name)
        raw = request.query_params.get("at")
        if raw in (None, ""):
            return Response(s.RoutingRecordOutput(selectors.routing_history(endpoint=endpoint), many=True).data)
        at = _time_param(raw)
        record = selectors.routing_at(endpoint=endpoint, at=at)
        if record is None:
            raise NotFound(f"Endpoint {endpoint.name!r} served nothing at {at.isoformat()}: its first deployment "
                           "came later.")
        return Response(s.RoutingRecordOutput([record], many=True).data)


# ------------------------------------------------------------------------------------------- deployments

DEPLOYMENT_PAGE = inline_serializer("DeploymentPage", {"results": s.DeploymentOutput(many=True),
                                                       "next_cursor": serializers.CharField(allow_null=True)})


class DeploymentListCreateApi(APIView):
    """List rollouts of visible endpoints (newest first, cursor pagination), or start one."""

    @extend_schema(operation_id="deployments_list", responses=DEPLOYMENT_PAGE, parameters=[
        OpenApiParameter("endpoint", str, description="Only this endpoint's deployments"),
        OpenApiParameter("phase", str, enum=Phase.values, description="Only deployments in this phase"),
        OpenApiParameter("max_results", int, description="Page size, 1..1000 (default 100)"),
        OpenApiParameter("cursor", str, description="Opaque cursor from the previous page's next_cursor")])
    def get(self, request: Request) -> Response:
        params = request.query_params
        endpoint = selectors.endpoint_get(actor=request.user, name=params["endpoint"]) if params.get("endpoint") \
            else None
        phase = params.get("phase") or None
        if phase is not None and phase not in Phase.values:
            raise InvalidInput(f"Unknown phase {phase!r}; use one of {', '.join(Phase.values)}.")
        qs = selectors.deployment_list(actor=request.user, endpoint=endpoint, phase=phase)
        rows, nxt = paginate(qs, params, [("pk", True)])
        return Response({"results": s.DeploymentOutput(rows, many=True).data, "next_cursor": nxt})

    @extend_schema(request=s.DeploymentInput, responses={201: s.DeploymentDetailOutput})
    def post(self, request: Request) -> Response:
        data = dict(_valid(s.DeploymentInput, request.data))
        endpoint = selectors.endpoint_get(actor=request.user, name=data.pop("endpoint"))
        if data["arms"] is not None:
            data["arms"] = [dict(arm) for arm in data["arms"]]
        deployment = services.deployment_start(actor=request.user, endpoint=endpoint, **data)
        return Response(_deployment_detail(deployment), status=status.HTTP_201_CREATED)


class DeploymentDetailApi(APIView):
    """Get one rollout with its steps, thresholds, latest analysis runs and metrics."""

    @extend_schema(responses=s.DeploymentDetailOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_deployment_detail(_deployment(request, pk)))


class DeploymentAnalysisApi(APIView):
    """A rollout's analysis runs, newest first."""

    @extend_schema(responses=s.AnalysisRunOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        runs = selectors.analysis_runs(deployment=_deployment(request, pk))
        return Response(s.AnalysisRunOutput(runs, many=True).data)


class DeploymentPauseApi(APIView):
    """Hold a progressing rollout where it is."""

    @extend_schema(request=s.ReasonInput, responses=s.DeploymentOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.ReasonInput, request.data)
        deployment = services.deployment_pause(deployment=_deployment(request, pk), actor=request.user, **data)
        return Response(_deployment_output(deployment))


class DeploymentResumeApi(APIView):
    """Let a paused rollout go on."""

    @extend_schema(request=None, responses=s.DeploymentOutput)
    def post(self, request: Request, pk: int) -> Response:
        deployment = services.deployment_resume(deployment=_deployment(request, pk), actor=request.user)
        return Response(_deployment_output(deployment))


class DeploymentPromoteApi(APIView):
    """Move a rollout past its current step (canary) or all the way (other strategies)."""

    full = False

    @extend_schema(request=None, responses=s.DeploymentOutput)
    def post(self, request: Request, pk: int) -> Response:
        deployment = services.deployment_promote(deployment=_deployment(request, pk), actor=request.user,
                                                 full=self.full)
        return Response(_deployment_output(deployment))


class DeploymentPromoteFullApi(DeploymentPromoteApi):
    """Promote a rollout all the way: the candidate takes all traffic."""

    full = True


class DeploymentAbortApi(APIView):
    """Stop an active rollout; the stable version takes all traffic again."""

    @extend_schema(request=s.ReasonInput, responses=s.DeploymentOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.ReasonInput, request.data)
        deployment = services.deployment_abort(deployment=_deployment(request, pk), actor=request.user, **data)
        return Response(_deployment_output(deployment))


class DeploymentRollbackApi(APIView):
    """Roll back in one action; answers the deployment now in force."""

    @extend_schema(request=s.ReasonInput, responses=s.DeploymentOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.ReasonInput, request.data)
        deployment = services.deployment_rollback(deployment=_deployment(request, pk), actor=request.user, **data)
        return Response(_deployment_output(deployment))


class DeploymentOutcomeApi(APIView):
    """Report an A/B outcome (POST) or compare the arms on every reported metric (GET)."""

    @extend_schema(responses=s.OutcomeComparisonOutput)
    def get(self, request: Request, pk: int) -> Response:
        deployment = _deployment(request, pk)
        return Response({"deployment": deployment.pk, "arms": s.ArmOutput(deployment.arms, many=True).data,
                         "comparisons": analysis.outcome_comparison(deployment=deployment)})

    @extend_schema(request=s.OutcomeInput, responses={201: s.OutcomeOutput})
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.OutcomeInput, request.data)
        outcome = services.outcome_record(deployment=_deployment(request, pk), actor=request.user, **data)
        return Response(s.OutcomeOutput(outcome).data, status=status.HTTP_201_CREATED)


class PredictionTraceApi(APIView):
    """Trace one answered request by its id (the gateway's X-Request-Id) within the retention window."""

    @extend_schema(responses=s.PredictionTraceOutput)
    def get(self, request: Request, request_id: str) -> Response:
        return Response(s.PredictionTraceOutput(selectors.prediction_trace(actor=request.user,
                                                                           request_id=request_id)).data)
