"""Native API of four-eyes releases: list a model's releases, ask for one (maintainers), approve it (an administrator
who did not ask), revoke it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.errors import InvalidInput
from registry.models import ArtifactRelease
from registry.pipeline.scan import release as releases


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def release_output(r: ArtifactRelease) -> dict[str, Any]:
    """Return a release as JSON-ready data."""
    return {"id": r.pk, "model": r.model.name, "version": r.version.number if r.version else None, "path": r.path,
            "sha256": r.blob_id, "accepted_globals": list(r.accepted_globals), "reason": r.reason,
            "state": r.state, "requested_by": _user(r.requested_by), "requested_at": _iso(r.requested_at),
            "approved_by": _user(r.approved_by), "approved_at": _iso(r.approved_at),
            "revoked_by": _user(r.revoked_by), "revoked_at": _iso(r.revoked_at), "revoke_reason": r.revoke_reason}


class ReleaseOutput(serializers.Serializer):
    """A four-eyes release of one quarantined content of a model."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    path = serializers.CharField()
    sha256 = serializers.CharField()
    accepted_globals = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    state = serializers.ChoiceField(choices=["requested", "approved", "revoked"])
    requested_by = serializers.CharField(allow_null=True)
    requested_at = serializers.DateTimeField()
    approved_by = serializers.CharField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoke_reason = serializers.CharField()


class ReleaseListOutput(serializers.Serializer):
    """A model's releases, newest first."""

    releases = ReleaseOutput(many=True)


class ReleaseRequestInput(serializers.Serializer):
    """Which file of which version, the exact globals accepted, and why."""

    version = serializers.IntegerField(min_value=1)
    path = serializers.CharField(max_length=1024)
    accepted_globals = serializers.ListField(child=serializers.CharField(max_length=500), max_length=1000,
                                             allow_empty=True)
    reason = serializers.CharField(max_length=releases.MAX_REASON)


class ReleaseRevokeInput(serializers.Serializer):
    """Why the release is withdrawn."""

    reason = serializers.CharField(max_length=releases.MAX_REASON)


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        raise InvalidInput("; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in serializer.errors.items()),
                           details=serializer.errors)
    return serializer.validated_data


class ReleaseListApi(APIView):
    """List a model's releases (anyone who sees the model), or ask for one (maintainers)."""

    @extend_schema(operation_id="models_releases_list", responses=ReleaseListOutput)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        return Response({"releases": [release_output(r) for r in releases.model_releases(model=model)]})

    @extend_schema(request=ReleaseRequestInput, responses={201: ReleaseOutput})
    def post(self, request: Request, name: str) -> Response:
        data = _valid(ReleaseRequestInput(data=request.data))
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=data["version"])
        release = releases.release_request(version=version, path=data["path"], actor=request.user,
                                           accepted_globals=data["accepted_globals"], reason=data["reason"])
        return Response(release_output(releases.release_get(model=model, pk=release.pk)),
                        status=status.HTTP_201_CREATED)


class ReleaseApproveApi(APIView):
    """Approve a requested release (an administrator other than the requester)."""

    @extend_schema(request=None, responses=ReleaseOutput)
    def post(self, request: Request, name: str, pk: int) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        release = releases.release_approve(release=releases.release_get(model=model, pk=pk), actor=request.user)
        return Response(release_output(releases.release_get(model=model, pk=release.pk)))


class ReleaseRevokeApi(APIView):
    """Withdraw a release or a request (maintainers, administrators): the content is quarantined again."""

    @extend_schema(request=ReleaseRevokeInput, responses=ReleaseOutput)
    def post(self, request: Request, name: str, pk: int) -> Response:
        data = _valid(ReleaseRevokeInput(data=request.data))
        model = selectors.model_get(actor=request.user, name=name)
        release = releases.release_revoke(release=releases.release_get(model=model, pk=pk), actor=request.user,
                                          reason=data["reason"])
        return Response(release_output(releases.release_get(model=model, pk=release.pk)))
