"""The policy page: the version in force, the proposed one with its diff and decision, the editor, the history."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from governance import permissions
from governance.models import PolicyState
from governance.pages import page_model, raise_http
from registry.errors import DomainError

from . import selectors, services
from .forms import PolicyDecisionForm, PolicyForm
from .schema import PolicyInvalid, parse_scope, schema


def _form_errors(form: PolicyForm, error: DomainError) -> None:
    """Put a refusal on the form: a document problem under the text box, one line per field it names."""
    if isinstance(error, PolicyInvalid):
        for item in error.details["errors"]:
            form.add_error("source", f"{item['pointer']}: {item['message']}")
    else:
        form.add_error(None, error.message)


class PolicyView(LoginRequiredMixin, View):
    """One scope's promotion policy: read it, propose a change (maintainers), approve or reject a proposal."""

    def _render(self, request: HttpRequest, model, scope: str, form: PolicyForm | None = None,
                decision_error: str | None = None, status: int = 200) -> HttpResponse:
        versions = list(selectors.policy_versions(model=model, scope=scope))
        active = next((v for v in versions if v.state == PolicyState.ACTIVE), None)
        pending = next((v for v in versions if v.state == PolicyState.PROPOSED), None)
        previous = selectors.previous_version(pending) if pending else None
        can_manage = permissions.can_manage_protection(request.user, model)
        context = {
            "model": model, "scope": scope, "label": versions[0].scope_label if versions else (
                "Model-wide default" if scope == "default" else scope),
            "versions": versions, "active": active, "pending": pending, "previous": previous,
            "diff": selectors.policy_diff(previous, pending) if pending else [],
            "can_manage": can_manage,
            "may_decide": can_manage and pending is not None and pending.author_id != request.user.pk,
            "is_author": pending is not None and pending.author_id == request.user.pk,
            "form": form or PolicyForm(initial={"source": services.draft_source(pending or active)}),
            "decision_error": decision_error, "schema_title": schema()["title"],
        }
        return render(request, "governance/policy.html", context, status=status)

    def _scope(self, scope: str) -> str:
        try:
            kind, target = parse_scope(scope)
        except DomainError as error:
            raise Http404(error.message) from None
        return f"{kind}:{target}" if kind else "default"

    def get(self, request: HttpRequest, name: str, scope: str) -> HttpResponse:
        """Show the policy, its pending change as a diff, and the editor."""
        return self._render(request, page_model(request, name), self._scope(scope))

    def post(self, request: HttpRequest, name: str, scope: str) -> HttpResponse:
        """Propose a version (`source`), or decide on the proposed one (`decision`)."""
        model = page_model(request, name)
        scope = self._scope(scope)
        if "decision" in request.POST:
            decision = PolicyDecisionForm(request.POST)
            if not decision.is_valid():
                return self._render(request, model, scope, decision_error="Choose approve or reject.", status=400)
            data = decision.cleaned_data
            try:
                version = selectors.policy_version_get(model=model, scope=scope, number=data["number"])
                act = services.policy_approve if data["decision"] == "approve" else services.policy_reject
                version = act(version=version, actor=request.user, comment=data["comment"])
            except DomainError as error:
                raise_http(error)
                return self._render(request, model, scope, decision_error=error.message, status=400)
            messages.success(request, f"Version {version.number} is now {version.get_state_display().lower()}.")
            return redirect("governance:policy", name=model.name, scope=scope)
        form = PolicyForm(request.POST)
        if form.is_valid():
            try:
                version = services.policy_propose(model=model, actor=request.user, scope=scope,
                                                  source=form.cleaned_data["source"], note=form.cleaned_data["note"])
            except DomainError as error:
                raise_http(error)
                _form_errors(form, error)
            else:
                messages.success(request, f"Version {version.number} is in force." if version.state ==
                                 PolicyState.ACTIVE else f"Version {version.number} proposed: it takes effect once "
                                                         "another maintainer approves it.")
                return redirect("governance:policy", name=model.name, scope=scope)
        return self._render(request, model, scope, form=form, status=400)
