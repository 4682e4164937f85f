"""Helpers every registry page module shares: find what the URL names, and turn domain errors into pages."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from registry import selectors
from registry.errors import DomainError, Forbidden, NotFound, ProtectedMove
from registry.models import ModelVersion, RegisteredModel


def raise_http(error: DomainError) -> None:
    """Turn the domain errors that have their own page (403, 404) into Django's, so the error page renders."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.message)
    if isinstance(error, NotFound):
        raise Http404(error.message)


def protected_move_redirect(request: HttpRequest, error: ProtectedMove) -> HttpResponse:
    """Answer a browser's move onto a protected target with the form that requests it (a 403 page without one)."""
    details = error.details if isinstance(error.details, dict) else {}
    url = (details.get("promotion_request") or {}).get("request_url")
    if not url or not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        raise PermissionDenied(error.message)
    info = details["promotion_request"]
    label = f"@{info['target']}" if info.get("kind") == "alias" else info.get("target", "")
    messages.info(request, f"{label} is protected: moving version {info.get('version')} there needs "
                           f"{info.get('approvals_required')} approval(s). Request the promotion below.")
    return HttpResponseRedirect(url)


def form_error(form: Form, error: DomainError) -> int:
    """Show a domain error on `form` (403 and 404 get their own page) and return the status to answer with; an error
    naming several fields (details {"fields": {name: message}}) shows each beside its field."""
    raise_http(error)
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, dict) and fields:
        for name, message in fields.items():
            form.add_error(name if name in form.fields else None, message)
    else:
        form.add_error(None, error.message)
    return error.status


def get_model(request: HttpRequest, name: str) -> RegisteredModel:
    """Return the model named `name` if the user may see it; a 404 otherwise."""
    if "\x00" in name:  # PostgreSQL refuses NUL in text; no model can have it in its name anyway
        raise Http404("No such model.")
    try:
        return selectors.model_get(actor=request.user, name=name)
    except DomainError as error:
        raise_http(error)
        raise


def get_version(model: RegisteredModel, number: int) -> ModelVersion:
    """Return version `number` of a visible model; a 404 otherwise."""
    try:
        return selectors.version_get(model=model, number=number)
    except DomainError as error:
        raise_http(error)
        raise Http404(error.message)
