"""Named permission predicates for environments, endpoints and rollouts, built on the registry's model roles."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments.models import Endpoint
from registry import permissions as registry_permissions


def can_manage_environments(user) -> bool:
    """Only staff define environments: they decide what production demands."""
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def can_view_endpoint(user, endpoint: Endpoint) -> bool:
    """Viewers of the endpoint's model may see it, its traffic and its rollouts."""
    return registry_permissions.can_view(user, endpoint.model)


def can_deploy(user, endpoint: Endpoint) -> bool:
    """Maintainers of the endpoint's model may roll versions out, pause, promote, abort and roll back."""
    return registry_permissions.can_maintain(user, endpoint.model)


def can_report_outcomes(user, endpoint: Endpoint) -> bool:
    """Contributors may report A/B outcomes back."""
    return registry_permissions.can_contribute(user, endpoint.model)


def visible_endpoints(user) -> QuerySet[Endpoint]:
    """Return the endpoints of the models `user` may see."""
    return Endpoint.objects.filter(model__in=registry_permissions.visible_models(user))
