"""Deployment API input and output shapes (DRF serializers): they validate and render, nothing else."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.models import Phase, Strategy

# ------------------------------------------------------------------------------------------------- input


class EnvironmentInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    requires_promotion = serializers.BooleanField(required=False, default=False)
    requires_signature = serializers.BooleanField(required=False, default=True)
    follow_alias = serializers.CharField(required=False, allow_blank=True, default="", max_length=256)
    follow_stage = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)


class EndpointInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    environment = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=256)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ArmInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    weight = serializers.IntegerField(min_value=1, max_value=99)


class DeploymentInput(serializers.Serializer):
    endpoint = serializers.CharField(max_length=100)
    strategy = serializers.ChoiceField(choices=Strategy.choices)
    version = serializers.IntegerField(min_value=1)
    steps = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True, default=None,
                                  help_text='Canary steps, e.g. [{"set_weight": 10}, {"pause": {"duration": 60}}, '
                                            '{"analysis": {}}].')
    analysis = serializers.DictField(required=False, allow_null=True, default=None,
                                     help_text="Analysis thresholds overriding the defaults.")
    shadow_percent = serializers.IntegerField(required=False, default=100, min_value=1, max_value=100)
    arms = ArmInput(many=True, required=False, allow_null=True, default=None)
    ab_header = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    ab_field = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    keep_warm_seconds = serializers.IntegerField(required=False, default=300, min_value=0, max_value=7 * 86400)
    auto_promote = serializers.BooleanField(
        required=False, default=False,
        help_text="Blue-green: switch after a passed smoke check; by default the candidate holds at preview until "
                  "someone promotes it.")


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class OutcomeInput(serializers.Serializer):
    metric = serializers.CharField(max_length=100)
    value = serializers.FloatField(help_text="A number; 0/1 (or false/true) for conversions.")
    key = serializers.CharField(required=False, allow_null=True, default=None, max_length=500,
                                help_text="The caller key used at prediction time (names the arm).")
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                       help_text="The arm's version number (instead of key).")
    request_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)

    def validate_value(self, value: Any) -> Any:
        if isinstance(self.initial_data, dict) and isinstance(self.initial_data.get("value"), str):
            raise serializers.ValidationError("Must be a number, not a string.")
        return value


# ------------------------------------------------------------------------------------------------ output


class EnvironmentOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    requires_promotion = serializers.BooleanField()
    requires_signature = serializers.BooleanField()
    follow_alias = serializers.CharField()
    follow_stage = serializers.CharField()
    created_at = serializers.DateTimeField()


class RouteOutput(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True)
    weight = serializers.IntegerField()
    role = serializers.CharField()


class ShadowOutput(RouteOutput):
    percent = serializers.IntegerField(allow_null=True)


class RoutingOutput(serializers.Serializer):
    generation = serializers.IntegerField(allow_null=True)
    deployment_id = serializers.IntegerField(allow_null=True)
    strategy = serializers.CharField(allow_null=True)
    phase = serializers.CharField(allow_null=True)
    routes = RouteOutput(many=True)
    preview = RouteOutput(allow_null=True)
    shadow = ShadowOutput(allow_null=True)
    ab = serializers.DictField(allow_null=True)


def _route(route: dict[str, Any] | None) -> dict[str, Any] | None:
    if not route:
        return None
    out = {"version": route.get("number"), "weight": route.get("weight", 0), "role": route.get("role", "")}
    if "percent" in route:
        out["percent"] = route["percent"]
    return out


def routing_summary(routing: dict[str, Any] | None) -> dict[str, Any]:
    """Reduce a gateway routing snapshot to what people need: versions, weights, roles (no file hashes)."""
    routing = routing or {}
    return {
        "generation": routing.get("generation"), "deployment_id": routing.get("deployment_id"),
        "strategy": routing.get("strategy"), "phase": routing.get("phase"),
        "routes": [_route(r) for r in routing.get("routes") or []],
        "preview": _route(routing.get("preview")), "shadow": _route(routing.get("shadow")), "ab": routing.get("ab"),
    }


class EndpointOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    environment = serializers.CharField(source="environment.name")
    model = serializers.CharField(source="model.name")
    generation = serializers.IntegerField()
    routing = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(RoutingOutput)
    def get_routing(self, obj) -> dict[str, Any]:
        return routing_summary(obj.routing)


class EndpointDetailOutput(EndpointOutput):
    active_deployment = serializers.IntegerField(allow_null=True, help_text="Id of the rollout in progress, if any.")


class RoutingRecordOutput(serializers.Serializer):
    generation = serializers.IntegerField()
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    reason = serializers.CharField()
    actor = serializers.CharField(source="actor.username", allow_null=True)
    at = serializers.DateTimeField()
    routing = serializers.SerializerMethodField()

    @extend_schema_field(RoutingOutput)
    def get_routing(self, obj) -> dict[str, Any]:
        return routing_summary(obj.routing)


class ArmOutput(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    weight = serializers.IntegerField()


class DeploymentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint = serializers.CharField(source="endpoint.name")
    environment = serializers.CharField(source="endpoint.environment.name")
    model = serializers.CharField(source="endpoint.model.name")
    strategy = serializers.ChoiceField(choices=Strategy.choices)
    phase = serializers.ChoiceField(choices=Phase.choices)
    stable_version = serializers.IntegerField(source="stable_version.number", allow_null=True)
    candidate_version = serializers.IntegerField(source="candidate_version.number")
    weight = serializers.IntegerField(help_text="Percent of live traffic the candidate receives now.")
    steps = serializers.ListField(child=serializers.DictField())
    step_index = serializers.IntegerField()
    current_step = serializers.SerializerMethodField()
    step_started_at = serializers.DateTimeField(allow_null=True)
    analysis = serializers.SerializerMethodField()
    failures = serializers.IntegerField()
    shadow_percent = serializers.IntegerField()
    arms = ArmOutput(many=True)
    ab_header = serializers.CharField()
    ab_field = serializers.CharField()
    keep_warm_seconds = serializers.IntegerField()
    warm_until = serializers.DateTimeField(allow_null=True)
    auto_promote = serializers.BooleanField()
    rollback_of = serializers.IntegerField(source="rollback_of_id", allow_null=True)
    message = serializers.CharField()
    phase_label = serializers.CharField(help_text='The phase as the dashboard shows it, e.g. "Rolled back by alice: '
                                                  'errors in checkout".')
    ended_by = serializers.CharField(source="ended_by.username", allow_null=True,
                                     help_text="Who rolled back or aborted the deployment by hand (null: the monitor).")
    end_reason = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    last_evaluated_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.DictField(allow_null=True, help_text="Null once every step is done."))
    def get_current_step(self, obj) -> dict[str, Any] | None:
        steps = obj.steps or []
        return steps[obj.step_index] if obj.step_index < len(steps) else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_analysis(self, obj) -> dict[str, Any]:
        return {k: v for k, v in (obj.analysis or {}).items() if not k.startswith("_")}


class AnalysisRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    step_index = serializers.IntegerField()
    verdict = serializers.CharField()
    metrics = serializers.JSONField()
    detail = serializers.CharField()
    created_at = serializers.DateTimeField()


class DeploymentDetailOutput(DeploymentOutput):
    analysis_runs = AnalysisRunOutput(many=True, help_text="The latest analysis runs, newest first.")
    metrics = serializers.JSONField(help_text="Per-version figures since the rollout started (and A/B outcomes).")


class OutcomeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    deployment = serializers.IntegerField(source="deployment_id")
    version = serializers.IntegerField(source="version.number")
    metric = serializers.CharField()
    value = serializers.FloatField()
    request_id = serializers.CharField()
    created_at = serializers.DateTimeField()


class OutcomeComparisonOutput(serializers.Serializer):
    deployment = serializers.IntegerField()
    arms = ArmOutput(many=True)
    comparisons = serializers.ListField(
        child=serializers.JSONField(),
        help_text="Per metric: the tests used (method), each arm's sample size and the verdict.")


class PredictionTraceOutput(serializers.Serializer):
    """What answered a request, and what that version was built from (deployments.selectors.prediction_trace)."""

    request_id = serializers.CharField()
    at = serializers.DateTimeField()
    endpoint = serializers.CharField(source="endpoint.name")
    environment = serializers.CharField(source="environment.name")
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.number")
    routing_role = serializers.CharField(help_text="stable, canary, preview, shadow, or the A/B arm")
    traffic_role = serializers.CharField(help_text="live (answered the caller) or shadow (a mirrored copy)")
    routing_generation = serializers.IntegerField()
    deployment = serializers.IntegerField(source="deployment.pk", allow_null=True, default=None)
    prediction_batch = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()
    feature_sets = serializers.SerializerMethodField()
    code = serializers.DictField()
    signature_digest = serializers.CharField(allow_null=True)
    approvals = serializers.ListField(child=serializers.DictField())
    links = serializers.SerializerMethodField()

    def get_prediction_batch(self, trace: dict[str, Any]) -> dict[str, Any] | None:
        batch = trace["batch"]
        if batch is None:
            return None
        return {"lineage_node": batch.pk, "window_start": batch.window_start, "window_end": batch.window_end,
                "requests": batch.properties.get("requests"), "rows": batch.row_count,
                "input_schema_digest": batch.properties.get("input_schema_digest"),
                "sample_digest": batch.properties.get("sample_digest")}

    def get_datasets(self, trace: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": d.role, "name": d.name, "uri": d.uri, "digest": d.digest} for d in trace["datasets"]]

    def get_feature_sets(self, trace: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"lineage_node": n.pk, "name": n.name, "version": n.version} for n in trace["feature_sets"]]

    def get_links(self, trace: dict[str, Any]) -> dict[str, str]:
        from django.urls import reverse

        version = trace["version"]
        links = {"version": reverse("registry:version-detail", args=[version.model.name, version.number]),
                 "endpoint": reverse("deployments:dashboard", args=[trace["endpoint"].name]),
                 "page": reverse("deployments:prediction-trace", args=[trace["request_id"]])}
        if trace["batch"] is not None:
            links["lineage"] = reverse("registry:lineage-node", args=[trace["batch"].pk])
        return links
