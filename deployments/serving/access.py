"""Who may call the gateway: serving tokens (checked, then cached briefly), the model role the endpoint needs, and
a per-token rate limit shared through the cache (counted per process while the cache does not answer)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from redis import RedisError

from deployments.serving.endpoints import EndpointState
from deployments.serving.errors import GatewayError

# What a shared cache raises when it cannot be reached: redis-py's errors (refused, timed out), OSError (file cache).
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
CACHE_RETRY_SECONDS = 5.0  # after a failure, count in this process for this long before trying the cache again
log = logging.getLogger(__name__)


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


class _LocalCounts:
    """Per-minute request counts of each token in this process: the rate limit while the shared cache is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.minute = 0
        self.counts: dict[str, int] = {}  # token prefix -> requests in `minute`
        self.cache_retry_at = 0.0  # monotonic time before which the shared cache is not tried
        self.cache_down = False  # logged once when an outage starts, once when it ends

    def count(self, prefix: str, minute: int) -> int:
        """Count one request of the token in `minute` and return its count so far."""
        with self.lock:
            if minute != self.minute:
                self.minute, self.counts = minute, {}
            self.counts[prefix] = self.counts.get(prefix, 0) + 1
            return self.counts[prefix]

    def cache_failed(self, exc: Exception) -> None:
        self.cache_retry_at = time.monotonic() + CACHE_RETRY_SECONDS
        if not self.cache_down:
            self.cache_down = True
            log.warning("serving rate limits are counted per process: the shared cache does not answer (%s: %s)",
                        exc.__class__.__name__, exc)

    def cache_answered(self) -> None:
        if self.cache_down:
            self.cache_down = False
            log.warning("serving rate limits are shared again: the cache answers")


_local = _LocalCounts()


def _shared_count(prefix: str, minute: int) -> int:
    """Count this request in the shared cache and return the token's count this minute."""
    from django.core.cache import cache

    key = f"serve-rate:{prefix}:{minute}"
    if cache.add(key, 1, timeout=90):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=90)
        return 1


def rate_limit(token: CachedToken) -> None:
    """Allow STRATUM_SERVING_RATE_PER_MINUTE requests per token per minute, shared through the cache; while the
    cache does not answer, each process counts on its own (so the limit holds per process) and serving goes on."""
    limit = settings.STRATUM_SERVING_RATE_PER_MINUTE
    if limit <= 0:
        return
    minute = int(time.time() // 60)
    count = None
    if time.monotonic() >= _local.cache_retry_at:
        try:
            count = _shared_count(token.prefix, minute)
        except CACHE_ERRORS as exc:
            _local.cache_failed(exc)
        else:
            _local.cache_answered()
    if count is None:
        count = _local.count(token.prefix, minute)
    if count > limit:
        raise GatewayError(429, "RATE_LIMITED", f"More than {limit} requests this minute for token {token.prefix}; "
                                                "slow down and retry after the minute turns.")


def forget_all() -> None:
    """Drop every cached token and this process's rate-limit counts and cache outage (tests)."""
    _tokens.clear()
    global _local
    _local = _LocalCounts()
