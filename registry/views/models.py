"""Model pages: the searchable list, creation, a model's page with its aliases and versioning triggers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from registry import charts, gates, permissions, selectors, services
from registry.errors import DomainError, ProtectedMove
from registry.filters import ModelFilter
from registry.models import RegisteredModel
from registry.pipeline import triggers
from registry.pipeline.scan.trust import TrustState, VersionTrust, versions_trust
from registry.search.words import understand_box
from registry.views.common import form_error, get_model, get_version, protected_move_redirect
from registry.views.forms import AliasSetForm, ModelCreateForm, RetrainRuleForm

MODELS_PER_PAGE = 25


class ModelListView(LoginRequiredMixin, View):
    """The models the user may see, searched with the filter language; htmx requests get the results only."""

    template_name = "registry/model_list.html"
    partial_template_name = "registry/_model_results.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the page, or only the results partial for an htmx request."""
        # One box takes plain words or a filter expression (an old `?filter=` address still works); the page says
        # which it understood.
        params = request.GET.copy()
        words, expression = params.pop("q", [""])[-1].strip(), params.pop("filter", [""])[-1].strip()
        form_params = params.copy()
        form_params["q"] = words or expression
        form = ModelFilter(form_params).form
        page, error, status, understood = None, None, 200, None
        try:
            understood = understand_box(words, expression)
            if understood is not None:
                params["filter" if understood.kind == "filter" else "q"] = understood.text
            models = selectors.model_list(actor=request.user, filters=params)
            page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
            page.object_list = list(page.object_list)  # evaluate here, where filter errors are caught
        except DomainError as exc:
            page, error, status = None, exc.message, exc.status
        context = {
            "form": form,
            "page": page,
            "error": error,
            "searching": any(request.GET.get(key) for key in ("q", "filter", "stage", "tag")),
            "understood": understood,
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
                status = form_error(form, error)
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
    trust = versions_trust([v.pk for v in versions])
    for version in versions:
        version.trust = trust.get(version.pk) or VersionTrust()
    quarantined = [v for v in versions if v.trust.state == TrustState.QUARANTINED]
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
        "quarantined_versions": quarantined,
        "aliases": aliases,
        "charts": charts.metric_figures(selectors.metric_series(model=model)),
        "can_maintain": can_maintain,
        "can_contribute": permissions.can_contribute(request.user, model),
        "alias_form": alias_form,
        "protected_aliases": [t for t in gates.protected_targets(model=model) if t["kind"] == "alias"],
        "retrain_rules": triggers.retrain_rules_for(model=model),
        "retrain_requests": triggers.retrain_requests_for(model=model),
        "retrain_form": retrain_form or RetrainRuleForm(),
    }
    return render(request, "registry/model_detail.html", context, status=status)


class RetrainRuleCreateView(LoginRequiredMixin, View):
    """Add a versioning trigger to a model (maintainers)."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Create the rule and return to the model page, or re-show it with the error."""
        model = get_model(request, name)
        form = RetrainRuleForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                triggers.retrain_rule_create(model=model, actor=request.user, trigger=form.cleaned_data["trigger"],
                                             cron=form.cleaned_data["cron"])
            except DomainError as error:
                status = form_error(form, error)
            else:
                messages.success(request, "Versioning trigger added.")
                return HttpResponseRedirect(reverse("registry:model-detail", args=[model.name]) + "#retraining")
        return _model_page(request, model, retrain_form=form, status=status)


class RetrainRuleDeleteView(LoginRequiredMixin, View):
    """Remove a versioning trigger (maintainers)."""

    def post(self, request: HttpRequest, name: str, pk: int) -> HttpResponse:
        """Delete the rule and return to the model page."""
        model = get_model(request, name)
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
        return _model_page(request, get_model(request, name))


class AliasSetView(LoginRequiredMixin, View):
    """Point an alias at a version (maintainers)."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Move the alias and return to the model page, or re-show the page with the form's errors."""
        model = get_model(request, name)
        if not permissions.can_maintain(request.user, model):
            raise PermissionDenied(f"You do not have permission to move aliases on model {model.name!r}.")
        versions = selectors.version_list(actor=request.user, model=model)
        numbers = list(versions.values_list("number", flat=True))
        form = AliasSetForm(request.POST, version_numbers=numbers)
        status = 400
        if form.is_valid():
            try:
                version = get_version(model, form.cleaned_data["version"])
                alias = services.alias_set(
                    model=model, alias=form.cleaned_data["alias"], version=version, actor=request.user
                )
            except ProtectedMove as error:
                return protected_move_redirect(request, error)
            except DomainError as error:
                status = form_error(form, error)
            else:
                messages.success(request, f"Alias @{alias.name} now points at version {version.number}.")
                return HttpResponseRedirect(reverse("registry:model-detail", args=[model.name]) + "#aliases")
        return _model_page(request, model, alias_form=form, status=status)
