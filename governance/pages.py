"""Helpers every governance page module shares: the model a page is about, and refusals as HTTP answers."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from registry import selectors as registry_selectors
from registry.errors import DomainError, Forbidden, NotFound
from registry.models import RegisteredModel


def raise_http(error: DomainError) -> None:
    """Turn a refusal into the HTTP answer a page gives: 403 for forbidden, 404 for not found."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.message)
    if isinstance(error, NotFound):
        raise Http404(error.message)


def page_model(request: HttpRequest, name: str) -> RegisteredModel:
    """Return the model a governance page is about, or answer 404/403 as the registry's pages do."""
    try:
        return registry_selectors.model_get(actor=request.user, name=name)
    except DomainError as error:
        raise_http(error)
        raise
