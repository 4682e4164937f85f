"""Named permission predicates over per-model roles; services enforce them, selectors filter by them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from registry.errors import Forbidden, NotFound
from registry.models import ModelRole, RegisteredModel, Role


def _role_grants(user) -> Q:
    return Q(user_id=user.pk) | Q(group__in=user.groups.all())


def model_role(user, model: RegisteredModel) -> int | None:
    """Return the highest role `user` holds on `model` (staff and the owner are owners), or None."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_staff or user.is_superuser or model.owner_id == user.pk:
        return Role.OWNER
    cache = getattr(user, "_stratum_roles", None)
    if cache is not None and model.pk in cache:
        return cache[model.pk]
    roles = ModelRole.objects.filter(_role_grants(user), model_id=model.pk).values_list("role", flat=True)
    best = max(roles, default=None)
    if cache is None:
        cache = {}
        user._stratum_roles = cache
    cache[model.pk] = best
    return best


def has_model_role(user, model: RegisteredModel, role: int) -> bool:
    """True when `user` holds at least `role` on `model`."""
    held = model_role(user, model)
    return held is not None and held >= role


def with_delegated_role(user, model: RegisteredModel, role: int):
    """Return a copy of `user` holding at least `role` on `model`; the original user object is untouched.

    For plug-ins that act on an authority the registry does not model itself: a promotion request approved by a
    quorum of reviewers executes its move with maintainer rights, recorded under the approving reviewer's name.
    """
    held = model_role(user, model) or 0
    delegate = copy.copy(user)
    delegate._stratum_roles = {**(getattr(user, "_stratum_roles", None) or {}), model.pk: max(held, role)}
    return delegate


def sees_every_model(user) -> bool:
    """Staff and superusers see every model (lists may then leave the visibility filter out of their queries)."""
    return bool(user is not None and user.is_authenticated and (user.is_staff or user.is_superuser))


def visible_models(user) -> QuerySet[RegisteredModel]:
    """Return the models `user` may see: staff see all, others those they own or hold a role on."""
    qs = RegisteredModel.objects.all()
    if user is None or not user.is_authenticated:
        return qs.none()
    if sees_every_model(user):
        return qs
    granted = ModelRole.objects.filter(_role_grants(user), model_id=OuterRef("pk"))
    return qs.filter(Q(owner_id=user.pk) | Exists(granted))


def can_view(user, model: RegisteredModel) -> bool:
    """Viewers and above may read a model and its versions."""
    return has_model_role(user, model, Role.VIEWER)


def can_contribute(user, model: RegisteredModel) -> bool:
    """Contributors and above may register versions and upload artifacts."""
    return has_model_role(user, model, Role.CONTRIBUTOR)


def can_maintain(user, model: RegisteredModel) -> bool:
    """Maintainers and above may edit, move stages and aliases, deprecate and delete."""
    return has_model_role(user, model, Role.MAINTAINER)


def can_manage_roles(user, model: RegisteredModel) -> bool:
    """Owners may grant and revoke roles."""
    return has_model_role(user, model, Role.OWNER)


def is_administrator(user) -> bool:
    """Staff and superusers administer the whole registry."""
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def can_request_release(user, model: RegisteredModel) -> bool:
    """Maintainers of a model may ask for a quarantined file of it to be released."""
    return has_model_role(user, model, Role.MAINTAINER)


def can_approve_release(user, model: RegisteredModel, requested_by_id: int | None) -> bool:
    """An administrator approves a release, never the person who asked for it (four eyes)."""
    return is_administrator(user) and requested_by_id is not None and requested_by_id != user.pk


def can_revoke_release(user, model: RegisteredModel) -> bool:
    """A maintainer of the model or an administrator may withdraw a release (or a request for one)."""
    return has_model_role(user, model, Role.MAINTAINER) or is_administrator(user)


def can_create_model(user) -> bool:
    """Any signed-in active user may create a model (and becomes its owner)."""
    return bool(user and user.is_authenticated and user.is_active)


def require(predicate: Callable[[Any, RegisteredModel], bool], user: Any, model: RegisteredModel, *,
            action: str) -> None:
    """Refuse `user` unless `predicate(user, model)` holds: not-found to whoever cannot see the model, so a refusal
    never confirms that a model exists; forbidden to whoever can see it but may not `action` on it."""
    if predicate(user, model):
        return
    if not can_view(user, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    raise Forbidden(f"You do not have permission to {action} on model {model.name!r}.")
