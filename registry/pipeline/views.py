"""The version page's Pipeline tab: background jobs with live progress (htmx polling) and scan verdicts."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views import View

from registry import permissions
from registry.errors import DomainError, NotFound
from registry.pipeline import selectors as pipeline_selectors
from registry.pipeline import signing
from registry.pipeline.convert import convert_enqueue
from registry.pipeline.scan import services as scan_service
from registry.views.common import get_model, get_version
from registry.views.version_tabs import version_tab_response, wants_panel


class VersionPipelineView(LoginRequiredMixin, View):
    """Render a version's jobs and scan results (the panel polls itself while a job is active); POST rescans."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the version page on its Pipeline tab, or the panel alone (its own polling)."""
        model = get_model(request, name)
        version = get_version(model, number)
        jobs = pipeline_selectors.version_jobs(version=version)
        context = {
            "model": model, "version": version, "jobs": jobs,
            "scan": pipeline_selectors.version_scan_status(version=version),
            "polling": any(job.active for job in jobs),
            "signature": pipeline_selectors.version_signature_status(version=version),
            "can_contribute": permissions.can_contribute(request.user, model),
            "can_maintain": permissions.can_maintain(request.user, model),
        }
        if not wants_panel(request):  # the page on its Pipeline tab, or the tab for a tab link
            return version_tab_response(request, model, version, tab="pipeline",
                                        template="registry/_version_pipeline.html", context=context)
        response = render(request, "registry/_pipeline_panel.html", context)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        add_never_cache_headers(response)
        return response

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Queue a fresh scan of every file (or the ONNX conversion of one) and return to the version page."""
        model = get_model(request, name)
        version = get_version(model, number)
        try:
            if request.POST.get("sign"):
                signing.sign_enqueue(version=version, actor=request.user)
                messages.success(request, "Queued the signing of this version's files.")
            elif request.POST.get("verify"):
                signing.verify_enqueue(version=version, actor=request.user)
                messages.success(request, "Queued a verification of the signature.")
            elif request.POST.get("convert"):
                artifact = version.artifacts.filter(path=request.POST["convert"]).first()
                if artifact is None:
                    raise NotFound(f"Version {version.number} has no file {request.POST['convert']!r}.")
                convert_enqueue(artifact=artifact, actor=request.user)
                messages.success(request, f"Queued the ONNX conversion of {artifact.path}.")
            else:
                jobs = scan_service.version_scan_request(version=version, actor=request.user)
                messages.success(request, f"Queued {len(jobs)} scan job{'s' if len(jobs) != 1 else ''}.")
        except DomainError as error:
            messages.error(request, error.message)
        return redirect("registry:version-pipeline", name=model.name, number=version.number)


class ScannerView(LoginRequiredMixin, View):
    """Show staff the scanner version and the progress of the background rescan (polls itself while it runs)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the scanner page or its htmx partial."""
        if not request.user.is_staff:
            raise PermissionDenied("Only staff see the scanner's rescan.")
        from registry.pipeline.scan.rescan import rescan_status

        template = "registry/_scanner_panel.html" if request.htmx else "registry/scanner.html"
        response = render(request, template, {"status": rescan_status()})
        patch_vary_headers(response, ("HX-Request",))
        add_never_cache_headers(response)
        return response
