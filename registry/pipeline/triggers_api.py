"""Versioning-trigger API: a model's retrain rules and the retrain requests they fired."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.errors import InvalidInput, NotFound
from registry.models import RetrainRequest, RetrainRule, RetrainTrigger
from registry.pipeline import triggers


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def rule_output(rule: RetrainRule) -> dict[str, Any]:
    """Return a retrain rule as JSON-ready data."""
    return {"id": rule.pk, "trigger": rule.trigger, "cron": rule.cron, "enabled": rule.enabled,
            "next_due_at": _iso(rule.next_due_at), "last_fired_at": _iso(rule.last_fired_at),
            "created_at": _iso(rule.created_at)}


def request_output(request: RetrainRequest) -> dict[str, Any]:
    """Return a retrain request as JSON-ready data."""
    return {"id": request.pk, "rule": request.rule_id, "trigger": request.trigger, "reason": request.reason,
            "suggested_bump": request.suggested_bump, "suggested_semver": request.suggested_semver,
            "details": request.details, "created_at": _iso(request.created_at)}


class RetrainRuleInput(serializers.Serializer):
    trigger = serializers.ChoiceField(choices=RetrainTrigger.values)
    cron = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                 help_text='Five-field cron expression (UTC) for schedule triggers, e.g. "0 3 * * 1".')


class RetrainRuleListApi(APIView):
    """List a model's versioning triggers, or add one (maintainers)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        return Response({"rules": [rule_output(r) for r in triggers.retrain_rules_for(model=model)]})

    @extend_schema(request=RetrainRuleInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        data = RetrainRuleInput(data=request.data)
        if not data.is_valid():
            raise InvalidInput("; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in data.errors.items()))
        rule = triggers.retrain_rule_create(model=model, actor=request.user, trigger=data.validated_data["trigger"],
                                            cron=data.validated_data.get("cron", ""))
        return Response(rule_output(rule), status=status.HTTP_201_CREATED)


class RetrainRuleDetailApi(APIView):
    """Remove one of a model's versioning triggers (maintainers)."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, pk: int) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        rule = RetrainRule.objects.filter(model=model, pk=pk).first()
        if rule is None:
            raise NotFound(f"Model {model.name!r} has no retrain rule {pk}.")
        triggers.retrain_rule_delete(rule=rule, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RetrainRequestListApi(APIView):
    """List the retrain requests a model's triggers fired, newest first."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        return Response({"requests": [request_output(r) for r in triggers.retrain_requests_for(model=model)]})
