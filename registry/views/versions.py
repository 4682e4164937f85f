"""Version pages: a version's tabs (Overview with its provenance and stage form, Artifacts, and the tabs other apps
provide), and registering a version with its files."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views import View

from registry import gates, panels, permissions, services
from registry.artifacts.uploads import received_files
from registry.errors import DomainError, ProtectedMove, UploadTooLarge
from registry.lineage.features import versions_feature_sets
from registry.lineage.selectors import run_held_elsewhere
from registry.models import ModelVersion, RegisteredModel
from registry.pipeline.scan.trust import version_trust
from registry.views.common import form_error, get_model, get_version, protected_move_redirect
from registry.views.forms import StageTransitionForm, VersionCreateForm
from registry.views.version_tabs import artifacts_context, version_tab_response


def _version_page(
    request: HttpRequest, model: RegisteredModel, version: ModelVersion, *,
    stage_form: StageTransitionForm | None = None, status: int = 200,
) -> HttpResponse:
    """Render a version's page on its Overview tab (also used to re-show the stage form with its errors)."""
    can_maintain = permissions.can_maintain(request.user, model)
    if stage_form is None and can_maintain:
        stage_form = StageTransitionForm(initial={"stage": version.stage})
    signature = version.signature or {}
    context = {
        "overview_panels": panels.render_overview_panels(request=request, model=model, version=version),
        "signature_inputs": signature.get("inputs") or [],
        "signature_outputs": signature.get("outputs") or [],
        "can_maintain": can_maintain,
        "stage_form": stage_form,
        "protected_stages": [t for t in gates.protected_targets(model=model) if t["kind"] == "stage"],
        "run_held_elsewhere": run_held_elsewhere(version),
        "feature_sets": versions_feature_sets([version.pk]).get(version.pk, []),
    }
    return version_tab_response(request, model, version, tab="overview", template="registry/_version_overview.html",
                                context=context, status=status)


class VersionDetailView(LoginRequiredMixin, View):
    """A version's Overview tab: provenance, signature, metrics, params, where it is deployed, the stage form."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the version page."""
        model = get_model(request, name)
        return _version_page(request, model, get_version(model, number))


class VersionTabView(LoginRequiredMixin, View):
    """A tab of a version's page at its own address: Artifacts, or one that another app provides (registry.panels)."""

    def get(self, request: HttpRequest, name: str, number: int, tab: str) -> HttpResponse:
        """Render the page with the tab selected, or the tab alone for a tab link's htmx request."""
        model = get_model(request, name)
        version = get_version(model, number)
        if tab == "artifacts":
            trust = version_trust(version)
            context = {**artifacts_context(model, version, trust), "trust": trust,
                       "can_request_release": permissions.can_request_release(request.user, model),
                       "can_revoke_release": permissions.can_revoke_release(request.user, model),
                       "is_administrator": permissions.is_administrator(request.user)}
            return version_tab_response(request, model, version, tab=tab,
                                        template="registry/_version_artifacts.html", context=context)
        provided = panels.version_tab(tab)
        if provided is None:
            raise Http404(f"A version page has no tab {tab!r}.")
        content = panels.render_tab(provided, request=request, model=model, version=version)
        return version_tab_response(request, model, version, tab=tab, template="registry/_version_provided_tab.html",
                                    context={"tab_content": content})


class VersionStageView(LoginRequiredMixin, View):
    """Move a version to another stage (maintainers)."""

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Transition the stage and return to the version page, or re-show it with the form's errors."""
        model = get_model(request, name)
        version = get_version(model, number)
        if not permissions.can_maintain(request.user, model):
            raise PermissionDenied(f"You do not have permission to move stages on model {model.name!r}.")
        form = StageTransitionForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                version = services.version_transition_stage(
                    version=version, actor=request.user, stage=form.cleaned_data["stage"],
                    archive_existing_versions=form.cleaned_data["archive_existing_versions"],
                )
            except ProtectedMove as error:
                return protected_move_redirect(request, error)
            except DomainError as error:
                status = form_error(form, error)
            else:
                messages.success(request, f"Version {version.number} is now in {version.stage}.")
                return redirect("registry:version-detail", name=model.name, number=version.number)
        return _version_page(request, model, version, stage_form=form, status=status)


# The version form's fields that services.version_fields_validate checks, with the value meaning "not given".
VERSION_FIELDS = {"source_uri": "", "run_id": "", "description": "", "semver": None, "metrics": {}, "params": {},
                  "signature": None, "code_repository": "", "code_commit": "", "environment": ""}


class VersionCreateView(LoginRequiredMixin, View):
    """Register a new version from the browser, uploading its files (contributors)."""

    template_name = "registry/version_form.html"

    def _model(self, request: HttpRequest, name: str) -> RegisteredModel:
        model = get_model(request, name)
        if not permissions.can_contribute(request.user, model):
            raise PermissionDenied(f"You do not have permission to add versions to model {model.name!r}.")
        return model

    def _render(self, request: HttpRequest, model: RegisteredModel, form: VersionCreateForm, status: int = 200
                ) -> HttpResponse:
        context = {"model": model, "form": form, "max_upload": settings.MAX_UPLOAD_BYTES}
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """Show the empty form."""
        return self._render(request, self._model(request, name), VersionCreateForm())

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Register the version with its uploaded files, or show what is wrong."""
        model = self._model(request, name)
        try:
            files = received_files(request, "files")
        except DomainError as error:  # too large, or a body that did not arrive whole: nothing was kept
            form = VersionCreateForm(request.POST)
            form.is_valid()
            if isinstance(error, UploadTooLarge):
                limit = filesizeformat(settings.MAX_UPLOAD_BYTES)
                form.add_error("files", f"The upload is larger than the limit of {limit}.")
            else:
                form.add_error("files", f"The upload did not arrive complete; please try again. ({error.message})")
            return self._render(request, model, form, status=error.status)
        form = VersionCreateForm(request.POST, request.FILES)
        status = 400
        parsed = form.is_valid()
        # Every field error at once: what the form could parse also goes through the service's own checks (the
        # fields the form refused are left out so that each shows one message).
        data = form.cleaned_data
        try:
            services.version_fields_validate(**{
                field: data.get(field) or default for field, default in VERSION_FIELDS.items()})
        except DomainError as error:
            status, parsed = form_error(form, error), False
        if parsed:
            try:
                version = services.version_create(
                    model=model, actor=request.user,
                    files=[(upload.name, upload.spooled) for upload in files],
                    semver=data["semver"] or None, description=data["description"],
                    source_uri=data["source_uri"], run_id=data["run_id"],
                    code_repository=data["code_repository"], code_commit=data["code_commit"],
                    metrics=data["metrics"], params=data["params"], environment=data["environment"],
                    feature_sets=data["feature_sets"],
                )
            except DomainError as error:
                status = form_error(form, error)
            else:
                messages.success(request, f"Registered version {version.number} of {model.name}.")
                page = reverse("registry:version-detail", args=[model.name, version.number])
                if request.headers.get("X-Requested-With") == "XMLHttpRequest":  # the upload script opens it itself
                    created = HttpResponse(status=201)
                    created["Location"] = page
                    return created
                return redirect(page)
        return self._render(request, model, form, status=status)
