"""What the deployments services share: locking and checking a deployer, the audit scope, number and name checks."""

from __future__ import annotations

import re
from typing import Any

from deployments import permissions
from deployments.models import Deployment, Endpoint
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.locking import model_lock
from registry.models import ModelVersion

SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


def scope(endpoint: Endpoint, version: ModelVersion | None = None) -> dict[str, Any]:
    """Audit scope: the model (and version) an event is about, so the model's history shows it."""
    out: dict[str, Any] = {"model_id": endpoint.model_id, "model": endpoint.model.name, "endpoint": endpoint.name}
    if version is not None:
        out["version_number"] = version.number
    return out


def is_user(actor: Any) -> bool:
    """Whether `actor` is a stored user (the monitor acts as None)."""
    return actor is not None and getattr(actor, "pk", None) is not None


def actor_name(actor: Any) -> str:
    """Name the actor in a rollout's messages: the user's name, or the monitor."""
    return getattr(actor, "username", "the monitor")


def slug(value: Any, field: str, max_length: int) -> str:
    """Return `value` if it is a lower-case slug of at most `max_length` characters, or raise InvalidInput."""
    if not isinstance(value, str) or not SLUG.fullmatch(value or "") or len(value) > max_length:
        raise InvalidInput(f"{field} must be lower-case letters, digits and hyphens, starting with a letter or digit "
                           f"(at most {max_length} characters).")
    return value


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """Return `value` if it is an int (not a bool) from `low` to `high`, or raise InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}.")
    return value


def lock_endpoint(endpoint: Endpoint) -> Endpoint:
    """Lock the endpoint's model, then the endpoint row, for the rest of the transaction (the lock order of
    registry/locking.py); every change of what it serves goes through here."""
    model = model_lock(endpoint.model_id)
    locked = (Endpoint.objects.select_for_update(no_key=True, of=("self",)).select_related("environment")
              .get(pk=endpoint.pk))
    locked.model = model
    return locked


def check_deployer(actor: Any, endpoint: Endpoint) -> None:
    """Answer not-found to whoever cannot see the endpoint, forbidden to whoever may not change what it serves."""
    if not permissions.can_view_endpoint(actor, endpoint):
        raise NotFound(f"Endpoint {endpoint.name!r} not found.")
    if not permissions.can_deploy(actor, endpoint):
        raise Forbidden(f"You need the maintainer role on model {endpoint.model.name!r} to change what endpoint "
                        f"{endpoint.name!r} serves.")


def locked(deployment: Deployment, actor: Any) -> Deployment:
    """Lock the deployment's endpoint, check a user actor may deploy there, and reload the deployment."""
    endpoint = lock_endpoint(deployment.endpoint)
    if is_user(actor):
        check_deployer(actor, endpoint)
    d = (Deployment.objects.select_related("candidate_version__model", "stable_version")
         .get(pk=deployment.pk))
    d.endpoint = endpoint
    return d


def require_phase(d: Deployment, phases: tuple[str, ...], action: str) -> None:
    """Raise InvalidState unless the deployment is in one of `phases` (`action` says what was asked)."""
    if d.phase not in phases:
        raise InvalidState(f"Deployment #{d.pk} is {d.get_phase_display().lower()}; it cannot be {action}.")
