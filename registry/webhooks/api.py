"""Webhook API: subscribe (the secret is in that response only), read, remove, the delivery log, replay and test."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.errors import NotFound
from registry.models import WebhookDelivery, WebhookSubscription
from registry.webhooks import services as webhooks


def subscription_output(sub: WebhookSubscription) -> dict[str, Any]:
    """Return a subscription as JSON-ready data (never its secret)."""
    return {"id": sub.pk, "url": sub.url, "model": sub.model.name if sub.model_id else None,
            "event_types": sub.event_types, "active": sub.active, "disabled_reason": sub.disabled_reason,
            "created_at": sub.created_at.isoformat()}


def delivery_output(d: WebhookDelivery) -> dict[str, Any]:
    """Return a delivery log row (status, latency, attempts; never a response body)."""
    return {"id": d.pk, "message_id": d.message_id, "event_type": d.event_type, "state": d.state,
            "attempts": d.attempts, "status_code": d.status_code, "latency_ms": d.latency_ms, "error": d.error,
            "created_at": d.created_at.isoformat(),
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}


class WebhookInput(serializers.Serializer):
    """A subscription: target URL, event types (empty: all) and the model (omit for registry-wide)."""

    url = serializers.CharField(max_length=2048)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    model = serializers.CharField(max_length=256, required=False, allow_null=True)


class WebhookListApi(APIView):
    """List the webhooks you manage, or subscribe one (its secret is in this response only)."""

    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="webhooks_list")
    def get(self, request: Request) -> Response:
        subs = webhooks.subscriptions_visible(request.user)
        return Response({"webhooks": [subscription_output(s) for s in subs]})

    @extend_schema(request=WebhookInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = WebhookInput(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data.get("model")
        model = selectors.model_get(actor=request.user, name=name) if name else None
        sub, secret = webhooks.subscription_create(actor=request.user, url=data.validated_data["url"],
                                                   event_types=data.validated_data.get("event_types"), model=model)
        return Response({**subscription_output(sub), "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    """Read or remove one webhook."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        return Response(subscription_output(webhooks.subscription_get(actor=request.user, pk=pk)))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        webhooks.subscription_delete(actor=request.user,
                                     subscription=webhooks.subscription_get(actor=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    """A webhook's delivery log: status, latency and attempts of each event sent."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        sub = webhooks.subscription_get(actor=request.user, pk=pk)
        return Response({"deliveries": [delivery_output(d) for d in sub.deliveries.all()[:200]]})


class WebhookReplayApi(APIView):
    """Send a logged event again (same message id, a new log row)."""

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, pk: int, delivery_id: int) -> Response:
        sub = webhooks.subscription_get(actor=request.user, pk=pk)
        delivery = sub.deliveries.filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound(f"Delivery {delivery_id} not found.")
        copy = webhooks.delivery_replay(actor=request.user, delivery=delivery)
        return Response(delivery_output(copy), status=status.HTTP_202_ACCEPTED)


class WebhookTestApi(APIView):
    """Send a signed test event now; the answer is only the status code and latency."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        sub = webhooks.subscription_get(actor=request.user, pk=pk)
        return Response(webhooks.send_test(actor=request.user, subscription=sub))
