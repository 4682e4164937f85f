"""Pure routing decisions shared by the gateway and the services: weighted, sticky and preview route choice."""

from __future__ import annotations

import hashlib
import hmac
import random
from typing import Any

from django.conf import settings

PREVIEW_HEADER = "X-Stratum-Preview"


def sticky_bucket(deployment_id: int, key: str) -> int:
    """Return the bucket 0..99 a caller key falls into for one deployment (stable across processes and restarts)."""
    digest = hashlib.sha256(f"{deployment_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def key_hash(key: str) -> str:
    """Return a keyed hash of a caller's A/B key, so outcomes can be grouped without storing the key itself."""
    return hmac.new(settings.SECRET_KEY.encode(), key.encode(), hashlib.sha256).hexdigest()


def route_for_bucket(routes: list[dict[str, Any]], bucket: int) -> dict[str, Any]:
    """Return the route whose cumulative weight range holds `bucket` (0..99)."""
    upto = 0
    for route in routes:
        upto += route["weight"]
        if bucket < upto:
            return route
    return routes[-1]


def choose_route(routing: dict[str, Any], *, preview: bool = False, key: str | None = None,
                 rng: random.Random | None = None) -> dict[str, Any]:
    """Return the route one request takes: the preview when asked for, the sticky arm for a key, else by weight."""
    if preview and routing.get("preview"):
        return routing["preview"]
    routes = routing["routes"]
    if len(routes) == 1:
        return routes[0]
    if routing.get("ab") and key is not None:
        return route_for_bucket(routes, sticky_bucket(routing["deployment_id"], key))
    return route_for_bucket(routes, int((rng or random).random() * 100))


def served_route(routing: dict[str, Any]) -> dict[str, Any] | None:
    """Return the stable route (the one a new rollout starts from), or None when the endpoint serves nothing."""
    routes = (routing or {}).get("routes") or []
    for route in routes:
        if route.get("role") == "stable":
            return route
    return max(routes, key=lambda r: r["weight"]) if routes else None
