"""Who may call the gateway: serving tokens (checked, then cached briefly), the model role the endpoint needs, and
a per-token rate limit shared through the cache."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from deployments.serving.endpoints import EndpointState
from deployments.serving.errors import GatewayError


@dataclass
class CachedToken:
    """A checked serving token: its user, public prefix, expiry in this cache, and per-model access decisions."""

    user: Any
    prefix: str
    until: float
    allowed: dict[int, bool] = field(default_factory=dict)


_tokens: dict[str, CachedToken] = {}


def authenticate(header: str) -> CachedToken:
    """Return the serving token behind an Authorization header (cached briefly), or raise 401."""
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise GatewayError(401, "UNAUTHENTICATED", "Send a serving token: Authorization: Bearer stm_… "
                                                    "(create one with the serve scope on the tokens page).")
    raw = raw.strip()
    digest = hashlib.sha256(raw.encode()).hexdigest()
    now = time.monotonic()
    cached = _tokens.get(digest)
    if cached is not None and cached.until > now:
        return cached
    from registry.authentication import user_for_token

    user = user_for_token(raw, scope="serve")
    if user is None:
        _tokens.pop(digest, None)
        raise GatewayError(401, "UNAUTHENTICATED", "Invalid, expired or revoked token, or a token without the "
                                                    "serve scope.")
    if len(_tokens) > 10_000:
        _tokens.clear()
    cached = CachedToken(user, user.stratum_token.prefix, now + settings.STRATUM_TOKEN_CACHE_SECONDS)
    _tokens[digest] = cached
    return cached


def authorize(token: CachedToken, state: EndpointState, name: str) -> None:
    """Refuse callers with no role on the endpoint's model (as if the endpoint did not exist)."""
    allowed = token.allowed.get(state.model_id)
    if allowed is None:
        from registry import permissions
        from registry.models import RegisteredModel

        allowed = permissions.can_view(token.user, RegisteredModel(pk=state.model_id, owner_id=state.model_owner_id))
        token.allowed[state.model_id] = allowed
    if not allowed:
        raise GatewayError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint {name!r} not found.")


def rate_limit(token: CachedToken) -> None:
    """Allow STRATUM_SERVING_RATE_PER_MINUTE requests per token per minute (shared through the cache)."""
    from django.core.cache import cache

    limit = settings.STRATUM_SERVING_RATE_PER_MINUTE
    if limit <= 0:
        return
    key = f"serve-rate:{token.prefix}:{int(time.time() // 60)}"
    if cache.add(key, 1, timeout=90):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=90)
        return
    if count > limit:
        raise GatewayError(429, "RATE_LIMITED", f"More than {limit} requests this minute for token {token.prefix}; "
                                                "slow down and retry after the minute turns.")


def forget_all() -> None:
    """Drop every cached token (tests)."""
    _tokens.clear()
