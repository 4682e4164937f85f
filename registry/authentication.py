"""API authentication: personal access tokens (Bearer), HTTP basic, and CSRF-checked browser sessions."""

from __future__ import annotations

import copy
import hmac
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from registry import caching, lockouts
from registry.access import TOKEN_PREFIX, token_hash
from registry.models import AccessToken

LAST_USED_RESOLUTION = timedelta(minutes=1)


# Checked tokens, briefly: a hot client is not looked up on every request. A revocation made in this process
# applies at once (any user or token save clears the cache, see registry.apps); one made elsewhere within
# STRATUM_TOKEN_CACHE_SECONDS.
_checked: dict[str, tuple[AccessToken, float]] = {}


def forget_checked_tokens() -> None:
    """Drop every cached token check (a user or token changed)."""
    _checked.clear()


def _lookup(raw: str) -> AccessToken | None:
    digest = token_hash(raw)
    hit = _checked.get(digest)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    prefix, _, secret = raw[len(TOKEN_PREFIX):].partition("_")
    if not prefix or not secret:
        return None
    token = next(iter(AccessToken.objects.select_related("user").filter(prefix=prefix).order_by()[:1]), None)
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    ttl = float(getattr(settings, "STRATUM_TOKEN_CACHE_SECONDS", 0) or 0)
    if ttl > 0:
        if len(_checked) > 10_000:
            _checked.clear()
        _checked[digest] = (token, time.monotonic() + ttl)
    return token


def user_for_token(raw: str, scope: str = "api"):
    """Return the active user owning a live token that carries `scope`, or None (expired, revoked, unknown,
    malformed, or a token for another purpose)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = _lookup(raw)
    if token is None:
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active or scope not in (token.scopes or ()):
        return None
    # Record use at most once a minute per token: each process checks its own copy first (no cache round trip on a
    # hot token), then the shared cache lets one process of all write.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        if caching.claim_once(f"token-used:{token.prefix}", LAST_USED_RESOLUTION.total_seconds()):
            AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    user = copy.copy(token.user)  # per request: role caches on the user object never outlive it
    user.__dict__.pop("_stratum_roles", None)
    user.stratum_token = token
    return user


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer stm_...` with a personal access token."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = user_for_token(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return user, user.stratum_token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="stratum"'


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP basic auth: a username with either the account password or a personal access token.

    A password goes through `django.contrib.auth.authenticate` with the request, so django-axes counts its
    failures and refuses a locked-out account or address (429 with Retry-After); a token is not a password and
    is never throttled (it cannot be guessed).
    """

    def authenticate_credentials(self, userid, password, request=None):
        if password.startswith(TOKEN_PREFIX):
            user = user_for_token(password)
            if user is None or user.get_username() != userid:
                raise exceptions.AuthenticationFailed("Invalid username/token.")
            return user, user.stratum_token
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if request is not None and lockouts.is_locked_out(request):
                raise lockouts.LockedOut(request) from None
            raise


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Browser session, with Django's CSRF check enforced on unsafe methods."""
