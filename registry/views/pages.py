"""Registry pages: views validate input, call one selector or service and render (htmx partials too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views import View

from registry import access, charts, permissions, selectors, services
from registry.errors import DomainError, Forbidden, NotFound
from registry.models import ModelVersion, RegisteredModel
from registry.pipeline import triggers
from registry.views.forms import (
    AliasSetForm,
    ModelCreateForm,
    ModelSearchForm,
    RetrainRuleForm,
    StageTransitionForm,
    TokenCreateForm,
    VersionCreateForm,
)

MODELS_PER_PAGE = 25


def _raise_http(error: DomainError) -> None:
    """Turn the domain errors that have their own page (403, 404) into Django's, so the error page renders."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.message)
    if isinstance(error, NotFound):
        raise Http404(error.message)


def _form_error(form: Form, error: DomainError) -> int:
    """Show a domain error on `form` (403 and 404 get their own page) and return the status to answer with."""
    _raise_http(error)
    form.add_error(None, error.message)
    return error.status


def _get_model(request: HttpRequest, name: str) -> RegisteredModel:
    """Return the model named `name` if the user may see it; a 404 otherwise."""
    if "\x00" in name:  # PostgreSQL refuses NUL in text; no model can have it in its name anyway
        raise Http404("No such model.")
    try:
        return selectors.model_get(actor=request.user, name=name)
    except DomainError as error:
        _raise_http(error)
        raise


def _get_version(model: RegisteredModel, number: int) -> ModelVersion:
    """Return version `number` of a visible model; a 404 otherwise."""
    try:
        return selectors.version_get(model=model, number=number)
    except DomainError as error:
        _raise_http(error)
        raise Http404(error.message)


# ------------------------------------------------------------------------------------------------ models


class ModelListView(LoginRequiredMixin, View):
    """The models the user may see, searched with the filter language; htmx requests get the results only."""

    template_name = "registry/model_list.html"
    partial_template_name = "registry/_model_results.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the page, or only the results partial for an htmx request."""
        form = ModelSearchForm(request.GET)
        page, error, status = None, None, 200
        if form.is_valid():
            data = form.cleaned_data
            try:
                models = selectors.model_list(
                    actor=request.user, filter_string=data["filter"] or None, stage=data["stage"] or None,
                    tag=data["tag"] or None, order=data["order"] or "name",
                )
                page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
                page.object_list = list(page.object_list)  # evaluate here, where filter errors are caught
            except DomainError as exc:
                page, error, status = None, exc.message, exc.status
        else:
            error = " ".join(str(message) for errors in form.errors.values() for message in errors)
            status = 400
        context = {
            "form": form,
            "page": page,
            "error": error,
            "searching": any(request.GET.get(key) for key in ("filter", "stage", "tag")),
            "can_create": permissions.can_create_model(request.user),
        }
        template = self.partial_template_name if request.htmx else self.template_name
        response = render(request, template, context, status=status)
        patch_vary_headers(response, ("HX-Request",))
        return response


class ModelCreateView(LoginRequiredMixin, View):
    """Create a registered model owned by the user."""

    template_name = "registry/model_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """Show the empty form."""
        return render(request, self.template_name, {"form": ModelCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create the model and go to its page, or show what is wrong."""
        form = ModelCreateForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                model = services.model_create(
                    actor=request.user, name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"], tags=form.cleaned_data["tags"],
                )
            except DomainError as error:
                status = _form_error(form, error)
            else:
                messages.success(request, f"Created model {model.name}.")
                return redirect("registry:model-detail", name=model.name)
        return render(request, self.template_name, {"form": form}, status=status)


def _model_page(
    request: HttpRequest, model: RegisteredModel, *, alias_form: AliasSetForm | None = None, status: int = 200,
    retrain_form: RetrainRuleForm | None = None,
) -> HttpResponse:
    """Render a model's page (also used to re-show the alias form with its errors)."""
    versions = list(selectors.version_list(actor=request.user, model=model))
    aliases = sorted(
        ((alias.name, version) for version in versions for alias in version.aliases.all()),
        key=lambda pair: pair[0],
    )
    can_maintain = permissions.can_maintain(request.user, model)
    if alias_form is None and can_maintain:
        alias_form = AliasSetForm(
            version_numbers=[v.number for v in versions],
            initial={"version": versions[0].number if versions else None},
        )
    context = {
        "model": model,
        "tags": list(model.tags.all()),
        "versions": versions,
        "aliases": aliases,
        "charts": charts.metric_figures(selectors.metric_series(model=model)),
        "can_maintain": can_maintain,
        "can_contribute": permissions.can_contribute(request.user, model),
        "alias_form": alias_form,
        "retrain_rules": triggers.retrain_rules_for(model=model),
        "retrain_requests": triggers.retrain_requests_for(model=model),
        "retrain_form": retrain_form or RetrainRuleForm(),
    }
    return render(request, "registry/model_detail.html", context, status=status)


class RetrainRuleCreateView(LoginRequiredMixin, View):
    """Add a versioning trigger to a model (maintainers)."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Create the rule and return to the model page, or re-show it with the error."""
        model = _get_model(request, name)
        form = RetrainRuleForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                triggers.retrain_rule_create(model=model, actor=request.user, trigger=form.cleaned_data["trigger"],
                                             cron=form.cleaned_data["cron"])
            except DomainError as error:
                status = _form_error(form, error)
            else:
                messages.success(request, "Versioning trigger added.")
                return HttpResponseRedirect(reverse("registry:model-detail", args=[model.name]) + "#retraining")
        return _model_page(request, model, retrain_form=form, status=status)


class RetrainRuleDeleteView(LoginRequiredMixin, View):
    """Remove a versioning trigger (maintainers)."""

    def post(self, request: HttpRequest, name: str, pk: int) -> HttpResponse:
        """Delete the rule and return to the model page."""
        model = _get_model(request, name)
        rule = model.retrain_rules.filter(pk=pk).first()
        if rule is None:
            raise Http404("No such trigger.")
        try:
            triggers.retrain_rule_delete(rule=rule, actor=request.user)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Versioning trigger removed.")
        return HttpResponseRedirect(reverse("registry:model-detail", args=[model.name]) + "#retraining")


class ModelDetailView(LoginRequiredMixin, View):
    """A model: description, deprecation, tags, aliases, versions and metric charts."""

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """Render the model page."""
        return _model_page(request, _get_model(request, name))


class AliasSetView(LoginRequiredMixin, View):
    """Point an alias at a version (maintainers)."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Move the alias and return to the model page, or re-show the page with the form's errors."""
        model = _get_model(request, name)
        if not permissions.can_maintain(request.user, model):
            raise PermissionDenied(f"You do not have permission to move aliases on model {model.name!r}.")
        versions = selectors.version_list(actor=request.user, model=model)
        numbers = list(versions.values_list("number", flat=True))
        form = AliasSetForm(request.POST, version_numbers=numbers)
        status = 400
        if form.is_valid():
            try:
                version = _get_version(model, form.cleaned_data["version"])
                alias = services.alias_set(
                    model=model, alias=form.cleaned_data["alias"], version=version, actor=request.user
                )
            except DomainError as error:
                status = _form_error(form, error)
            else:
                messages.success(request, f"Alias @{alias.name} now points at version {version.number}.")
                return HttpResponseRedirect(reverse("registry:model-detail", args=[model.name]) + "#aliases")
        return _model_page(request, model, alias_form=form, status=status)


# ---------------------------------------------------------------------------------------------- versions


def _version_page(
    request: HttpRequest, model: RegisteredModel, version: ModelVersion, *,
    stage_form: StageTransitionForm | None = None, status: int = 200,
) -> HttpResponse:
    """Render a version's page (also used to re-show the stage form with its errors)."""
    can_maintain = permissions.can_maintain(request.user, model)
    if stage_form is None and can_maintain:
        stage_form = StageTransitionForm(initial={"stage": version.stage})
    signature = version.signature or {}
    context = {
        "model": model,
        "version": version,
        "artifacts": list(selectors.artifact_list(version=version)),
        "signature_inputs": signature.get("inputs") or [],
        "signature_outputs": signature.get("outputs") or [],
        "can_maintain": can_maintain,
        "stage_form": stage_form,
    }
    return render(request, "registry/version_detail.html", context, status=status)


class VersionDetailView(LoginRequiredMixin, View):
    """A version: provenance, signature, metrics, params, artifacts and the stage form."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the version page."""
        model = _get_model(request, name)
        return _version_page(request, model, _get_version(model, number))


class VersionStageView(LoginRequiredMixin, View):
    """Move a version to another stage (maintainers)."""

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Transition the stage and return to the version page, or re-show it with the form's errors."""
        model = _get_model(request, name)
        version = _get_version(model, number)
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
            except DomainError as error:
                status = _form_error(form, error)
            else:
                messages.success(request, f"Version {version.number} is now in {version.stage}.")
                return redirect("registry:version-detail", name=model.name, number=version.number)
        return _version_page(request, model, version, stage_form=form, status=status)


class VersionCreateView(LoginRequiredMixin, View):
    """Register a new version from the browser, uploading its files (contributors)."""

    template_name = "registry/version_form.html"

    def _model(self, request: HttpRequest, name: str) -> RegisteredModel:
        model = _get_model(request, name)
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
        files = request.FILES.getlist("files")  # parsing the body is what sets the too-large flag
        form = VersionCreateForm(request.POST, request.FILES)
        if getattr(request, "stratum_upload_too_large", False):
            form.is_valid()
            limit = filesizeformat(settings.MAX_UPLOAD_BYTES)
            form.add_error("files", f"The upload is larger than the limit of {limit}.")
            return self._render(request, model, form, status=413)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                version = services.version_create(
                    model=model, actor=request.user,
                    files=[(upload.name, upload.spooled) for upload in files],
                    semver=data["semver"] or None, description=data["description"],
                    source_uri=data["source_uri"], run_id=data["run_id"],
                    code_repository=data["code_repository"], code_commit=data["code_commit"],
                    metrics=data["metrics"], params=data["params"], environment=data["environment"],
                )
            except DomainError as error:
                status = _form_error(form, error)
            else:
                messages.success(request, f"Registered version {version.number} of {model.name}.")
                return redirect("registry:version-detail", name=model.name, number=version.number)
        return self._render(request, model, form, status=status)


# ------------------------------------------------------------------------------------------------ tokens


class TokenListView(LoginRequiredMixin, View):
    """The user's personal API tokens; creating one shows its secret exactly once."""

    template_name = "registry/tokens.html"

    def _render(
        self, request: HttpRequest, form: TokenCreateForm, status: int = 200, **extra: Any
    ) -> HttpResponse:
        tokens = list(selectors.token_list(actor=request.user))
        context = {"form": form, "tokens": tokens, "now": timezone.now(), **extra}
        response = render(request, self.template_name, context, status=status)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        """List the tokens with an empty creation form."""
        return self._render(request, TokenCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create a token and show its raw secret in this response only."""
        form = TokenCreateForm(request.POST)
        status = 400
        if form.is_valid():
            days = form.cleaned_data["expires_in_days"]
            try:
                token, raw = access.token_create(
                    user=request.user, actor=request.user, name=form.cleaned_data["name"],
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    scopes=[form.cleaned_data["scope"] or "api"],
                )
            except DomainError as error:
                status = _form_error(form, error)
            else:
                return self._render(request, TokenCreateForm(), created=token, raw_token=raw)
        return self._render(request, form, status=status)


class TokenRevokeView(LoginRequiredMixin, View):
    """Revoke one of the user's tokens."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Revoke the token and return to the list."""
        try:
            token = selectors.token_get(actor=request.user, token_id=pk)
            token = access.token_revoke(token=token, actor=request.user)
        except DomainError as error:
            _raise_http(error)
            messages.error(request, error.message)
        else:
            messages.success(request, f"Revoked token {token.name} ({token.prefix}).")
        return redirect("registry:token-list")
