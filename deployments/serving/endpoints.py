"""This process's routing of each endpoint: the snapshot the services wrote, re-checked against the endpoint's
generation at most every STRATUM_ROUTING_REFRESH_SECONDS, so the request path does not query the database."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from deployments.serving.errors import GatewayError
from deployments.serving.sessions import forget_quarantined, warm

log = logging.getLogger(__name__)


@dataclass
class EndpointState:
    """A process's view of one endpoint: its routing snapshot and the identity the gateway checks against."""

    endpoint_id: int
    model_id: int
    model_owner_id: int | None
    model_name: str
    generation: int
    routing: dict[str, Any]
    checked: float


_endpoints: dict[str, EndpointState] = {}


def endpoint_state(name: str) -> EndpointState:
    """Return the endpoint's routing, re-checking its generation at most every STRATUM_ROUTING_REFRESH_SECONDS."""
    from deployments.models import Endpoint

    state = _endpoints.get(name)
    now = time.monotonic()
    if state is not None and now - state.checked < settings.STRATUM_ROUTING_REFRESH_SECONDS:
        return state
    if state is not None:
        generation = Endpoint.objects.filter(pk=state.endpoint_id).values_list("generation", flat=True).first()
        if generation == state.generation:
            forget_quarantined(state.routing)  # content quarantined since it was loaded is not served on
            state.checked = now
            return state
    row = (Endpoint.objects.filter(name=name).select_related("model")
           .values_list("pk", "model_id", "model__owner_id", "model__name", "generation", "routing").first())
    if row is None:
        _endpoints.pop(name, None)
        raise GatewayError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint {name!r} not found.")
    pk, model_id, owner_id, model_name, generation, routing = row
    warm(routing or {})
    state = EndpointState(pk, model_id, owner_id, model_name, generation, routing or {}, now)
    _endpoints[name] = state
    return state


def routing_changed(name: str) -> None:
    """Forget this process's routing of an endpoint and warm the new one (called after a routing change commits)."""
    _endpoints.pop(name, None)
    try:
        endpoint_state(name)
    except Exception:
        log.exception("warming endpoint %s failed", name)


def forget_all() -> None:
    """Drop this process's routing of every endpoint (tests)."""
    _endpoints.clear()
