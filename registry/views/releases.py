"""Release pages: ask for a quarantined file to be released, approve (an administrator who did not ask), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View

from registry.errors import DomainError
from registry.models import ArtifactRelease
from registry.pipeline.scan import release as releases
from registry.views.common import get_model, get_version


def _back(release: ArtifactRelease | None, model_name: str, number: int | None) -> HttpResponse:
    if number is None and release is not None and release.version is not None:
        number = release.version.number
    if number is None:
        return redirect(reverse("registry:model-detail", args=[model_name]))
    return redirect(reverse("registry:version-tab", args=[model_name, number, "artifacts"]) + "#releases")


class ReleaseRequestView(LoginRequiredMixin, View):
    """Ask for a quarantined file of a version to be released (maintainers)."""

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        model = get_model(request, name)
        version = get_version(model, number)
        try:
            releases.release_request(version=version, path=request.POST.get("path", ""), actor=request.user,
                                     accepted_globals=request.POST.getlist("accepted_globals"),
                                     reason=request.POST.get("reason", ""))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Release requested; an administrator other than you must approve it.")
        return _back(None, model.name, version.number)


class ReleaseApproveView(LoginRequiredMixin, View):
    """Approve a requested release (an administrator who did not ask)."""

    def post(self, request: HttpRequest, name: str, pk: int) -> HttpResponse:
        model = get_model(request, name)
        release = None
        try:
            release = releases.release_get(model=model, pk=pk)
            releases.release_approve(release=release, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Release approved: {release.path} is served again.")
        return _back(release, model.name, None)


class ReleaseRevokeView(LoginRequiredMixin, View):
    """Revoke a release or a request for one (maintainers, administrators)."""

    def post(self, request: HttpRequest, name: str, pk: int) -> HttpResponse:
        model = get_model(request, name)
        release = None
        try:
            release = releases.release_get(model=model, pk=pk)
            releases.release_revoke(release=release, actor=request.user, reason=request.POST.get("reason", ""))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Release revoked: {release.path} is quarantined again.")
        return _back(release, model.name, None)
