"""Pipeline API: a version's scan verdicts (and a rescan request) and its background jobs."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.errors import NotFound
from registry.models import Job, WebhookDelivery, WebhookSubscription
from registry.pipeline import keys, signing
from registry.pipeline import selectors as pipeline_selectors
from registry.pipeline.convert import convert_enqueue
from registry.pipeline.scan import services as scan_service
from registry.webhooks import services as webhooks


def job_output(job: Job) -> dict[str, Any]:
    """Return a job as JSON-ready data."""
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {"id": job.pk, "kind": job.kind, "target": job.target_label, "state": job.state,
            "attempts": job.attempts, "progress": job.progress, "error": job.error, "result": job.result,
            "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at)}


class VersionScanApi(APIView):
    """Read the scan verdict of each file of a version, or ask for a rescan (contributors)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response(pipeline_selectors.version_scan_status(version=version))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        jobs = scan_service.version_scan_request(version=version, actor=request.user)
        return Response({"jobs": [job_output(j) for j in jobs]}, status=status.HTTP_202_ACCEPTED)


class VersionJobListApi(APIView):
    """List a version's most recent background jobs with their state and progress."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response({"jobs": [job_output(j) for j in pipeline_selectors.version_jobs(version=version)]})


class ConversionInput(serializers.Serializer):
    """Which file of the version to convert."""

    path = serializers.CharField(max_length=1024)


class VersionConversionApi(APIView):
    """Queue the conversion of one of a version's scikit-learn files to ONNX (contributors)."""

    @extend_schema(request=ConversionInput, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        data = ConversionInput(data=request.data)
        data.is_valid(raise_exception=True)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        artifact = version.artifacts.filter(path=data.validated_data["path"]).first()
        if artifact is None:
            raise NotFound(f"Version {version.number} has no file {data.validated_data['path']!r}.")
        job = convert_enqueue(artifact=artifact, actor=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class VersionSignatureApi(APIView):
    """Read a version's signature state, or sign its current file tree (maintainers)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response(pipeline_selectors.version_signature_status(version=version))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response(job_output(signing.sign_enqueue(version=version, actor=request.user)),
                        status=status.HTTP_202_ACCEPTED)


class VersionSignatureVerifyApi(APIView):
    """Queue a verification of a version's signature against its current tree (contributors)."""

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        job = signing.verify_enqueue(version=version, actor=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class VersionSignatureBundleApi(APIView):
    """Download the Sigstore bundle of a version's latest signature (verify it with the model_signing CLI)."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY})
    def get(self, request: Request, name: str, ref: str) -> HttpResponse:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        signature = version.signatures.select_related("bundle").first()
        if signature is None:
            raise NotFound(f"Version {version.number} has not been signed.")
        response = HttpResponse(signing.bundle_bytes(signature).getvalue(), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{model.name}-v{version.number}.sig"'
        return response


class SigningKeyApi(APIView):
    """The published public key (PEM) that verifies every version signature."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(keys.public_key_pem(), content_type="application/x-pem-file")
        response["X-Key-Fingerprint"] = keys.key_fingerprint()
        return response


# ------------------------------------------------------------------------------------------------ webhooks


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
