"""Promotion policy API: the published schema, policy scopes and versions (propose, approve, reject), explain."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.models import PromotionPolicyVersion, TargetKind
from registry import selectors as registry_selectors
from registry.errors import InvalidInput

from . import selectors, services
from .schema import normalise_target, refuse, schema


class PolicyVersionOutput(serializers.ModelSerializer):
    scope = serializers.CharField(read_only=True)
    author = serializers.CharField(source="author_username")
    decided_by = serializers.CharField(source="decided_by_username")

    class Meta:
        model = PromotionPolicyVersion
        fields = ["scope", "number", "state", "document", "source", "sha256", "note", "author", "created_at",
                  "decided_by", "decided_at", "decision_comment"]


class PolicyProposeInput(serializers.Serializer):
    document = serializers.JSONField(required=False, help_text="The policy as a JSON object, or as YAML/JSON "
                                                               "text in `source`.")
    source = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=100_000)
    remove = serializers.BooleanField(default=False, help_text="Propose lifting the protection of the target.")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class PolicyDecisionInput(serializers.Serializer):
    comment = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


SCOPE_ROWS = inline_serializer("PolicyScope", many=True, fields={
    "scope": serializers.CharField(), "label": serializers.CharField(), "protected": serializers.BooleanField(),
    "active": PolicyVersionOutput(allow_null=True), "pending": PolicyVersionOutput(allow_null=True)})


def _model(request: Request, name: str) -> Any:
    return registry_selectors.model_get(actor=request.user, name=name)


class PolicySchemaApi(APIView):
    """The JSON Schema every promotion policy document must satisfy (also in governance/schemas/)."""

    @extend_schema(responses=inline_serializer("PolicySchema", {"$schema": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        return Response(schema())


class PolicyScopeListApi(APIView):
    """A model's policy scopes (the model-wide default and each protected target) with the version in force and
    the one waiting for approval."""

    @extend_schema(responses=SCOPE_ROWS, operation_id="models_policies_scopes_list")
    def get(self, request: Request, name: str) -> Response:
        rows = selectors.policy_scopes(model=_model(request, name))
        return Response([{"scope": r["scope"], "label": r["label"], "protected": r["protected"],
                          "active": PolicyVersionOutput(r["active"]).data if r["active"] else None,
                          "pending": PolicyVersionOutput(r["pending"]).data if r["pending"] else None}
                         for r in rows])


class PolicyVersionListApi(APIView):
    """The versions of one scope's policy (newest first), or propose a new one (maintainers): it takes effect once
    another maintainer approves it."""

    @extend_schema(responses=PolicyVersionOutput(many=True), operation_id="models_policies_versions_list")
    def get(self, request: Request, name: str, scope: str) -> Response:
        versions = selectors.policy_versions(model=_model(request, name), scope=scope)
        return Response(PolicyVersionOutput(versions, many=True).data)

    @extend_schema(request=PolicyProposeInput, responses={201: PolicyVersionOutput})
    def post(self, request: Request, name: str, scope: str) -> Response:
        ser = PolicyProposeInput(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        model = _model(request, name)
        source = data.get("document") if "document" in data else data.get("source")
        if source is None and not data["remove"]:
            raise refuse([("/", "No policy given: send `document` (a JSON object) or `source` (YAML or JSON "
                                "text).")])
        version = services.policy_propose(model=model, actor=request.user, scope=scope, source=source,
                                          remove=data["remove"], note=data["note"])
        return Response(PolicyVersionOutput(version).data, status=status.HTTP_201_CREATED)


class _PolicyDecisionApi(APIView):
    """Decide on a proposed version with `decide` (a service taking version, actor and comment)."""

    decide: staticmethod

    @extend_schema(request=PolicyDecisionInput, responses=PolicyVersionOutput)
    def post(self, request: Request, name: str, scope: str, number: int) -> Response:
        ser = PolicyDecisionInput(data=request.data)
        ser.is_valid(raise_exception=True)
        version = selectors.policy_version_get(model=_model(request, name), scope=scope, number=number)
        version = self.decide(version=version, actor=request.user, comment=ser.validated_data["comment"])
        return Response(PolicyVersionOutput(version).data)


class PolicyVersionApproveApi(_PolicyDecisionApi):
    """Approve a proposed version (a maintainer other than its author): it replaces the version in force."""

    decide = staticmethod(services.policy_approve)


class PolicyVersionRejectApi(_PolicyDecisionApi):
    """Reject a proposed version (another maintainer, with a reason) or withdraw it (its author)."""

    decide = staticmethod(services.policy_reject)


class PromotionExplainApi(APIView):
    """What the policy in force would require for moving a version onto a target, and what blocks it now; writes
    nothing. Execution evaluates the same way."""

    @extend_schema(parameters=[OpenApiParameter("model", str, required=True),
                               OpenApiParameter("version", str, required=True),
                               OpenApiParameter("kind", str, enum=list(TargetKind.values)),
                               OpenApiParameter("target", str, required=True)],
                   responses=inline_serializer("PromotionExplain", {
                       "model": serializers.CharField(), "version": serializers.IntegerField(),
                       "kind": serializers.CharField(), "target": serializers.CharField(),
                       "protected": serializers.BooleanField(), "policy": serializers.JSONField(allow_null=True),
                       "document": serializers.JSONField(allow_null=True),
                       "pending_policy": serializers.JSONField(allow_null=True),
                       "current_holder": serializers.IntegerField(allow_null=True),
                       "request": serializers.JSONField(allow_null=True), "approvals": serializers.JSONField(),
                       "gates": serializers.JSONField(), "freeze": serializers.JSONField(),
                       "emergency_rollback": serializers.JSONField(), "blocked": serializers.BooleanField(),
                       "blockers": serializers.JSONField(), "summary": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        params = request.query_params
        missing = [key for key in ("model", "version", "target") if not params.get(key)]
        if missing:
            raise InvalidInput(f"Missing query parameter(s): {', '.join(missing)}.",
                               details={"fields": {key: "This parameter is required." for key in missing}})
        model = registry_selectors.model_get(actor=request.user, name=params["model"])
        version = registry_selectors.version_get(model=model, number=params["version"])
        kind, target = normalise_target(params.get("kind") or None, params["target"])
        return Response(selectors.explain(model=model, version=version, kind=kind, target=target))
