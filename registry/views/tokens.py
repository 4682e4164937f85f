"""Token pages: the user's personal API tokens, creating one (its secret shown once) and revoking one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views import View

from registry import access, selectors
from registry.errors import DomainError
from registry.views.common import form_error, raise_http
from registry.views.forms import TokenCreateForm

JUST_CREATED = "stratum.token_just_created"


class TokenListView(LoginRequiredMixin, View):
    """The user's personal API tokens; creating one shows its secret exactly once."""

    template_name = "registry/tokens.html"

    def _render(self, request: HttpRequest, form: TokenCreateForm, status: int = 200,
                just_created: dict[str, Any] | None = None) -> HttpResponse:
        tokens = list(selectors.token_list(actor=request.user))
        context: dict[str, Any] = {"form": form, "tokens": tokens, "now": timezone.now()}
        created = next((t for t in tokens if just_created and t.pk == just_created["id"]), None)
        if created is not None:
            context.update(created=created, raw_token=just_created["raw"])
        response = render(request, self.template_name, context, status=status)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        """List the tokens with an empty creation form; right after a creation, its secret once."""
        # Popped: a refresh shows the list without the secret.
        return self._render(request, TokenCreateForm(), just_created=request.session.pop(JUST_CREATED, None))

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create a token, then redirect to the list (post/redirect/get: a refresh never creates a second one),
        which shows its raw secret once."""
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
                status = form_error(form, error)
            else:
                # The secret rides in the server-side session across the redirect and is removed when first shown.
                request.session[JUST_CREATED] = {"id": token.pk, "raw": raw}
                return redirect("registry:token-list")
        return self._render(request, form, status=status)


class TokenRevokeView(LoginRequiredMixin, View):
    """Revoke one of the user's tokens."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Revoke the token and return to the list."""
        try:
            token = selectors.token_get(actor=request.user, token_id=pk)
            token = access.token_revoke(token=token, actor=request.user)
        except DomainError as error:
            raise_http(error)
            messages.error(request, error.message)
        else:
            messages.success(request, f"Revoked token {token.name} ({token.prefix}).")
        return redirect("registry:token-list")
