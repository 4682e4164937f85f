"""Pipeline API: a version's scan verdicts (and a rescan request), its jobs, conversions and signatures, and a
model's versioning triggers (retrain rules and the retrain requests they fired)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.errors import InvalidInput, NotFound
from registry.models import Job, RetrainRequest, RetrainRule, RetrainTrigger
from registry.pipeline import keys, signing, triggers
from registry.pipeline import selectors as pipeline_selectors
from registry.pipeline.convert import convert_enqueue
from registry.pipeline.scan import services as scan_service


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def job_output(job: Job) -> dict[str, Any]:
    """Return a job as JSON-ready data."""
    return {"id": job.pk, "kind": job.kind, "target": job.target_label, "state": job.state,
            "attempts": job.attempts, "progress": job.progress, "error": job.error, "result": job.result,
            "created_at": _iso(job.created_at), "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at)}


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


# ---------------------------------------------------------------------------------- versioning triggers


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


class ScannerRescanApi(APIView):
    """Report the scanner version and the progress of the background rescan of older scans (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        from registry.pipeline.scan.rescan import rescan_status

        return Response(rescan_status())
