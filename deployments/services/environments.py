"""Where versions are served: defining environments and creating endpoints in them."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from deployments import permissions
from deployments.models import Endpoint, Environment
from deployments.services.common import scope, slug
from registry import events, validation
from registry import permissions as registry_permissions
from registry.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from registry.locking import model_lock
from registry.models import RegisteredModel, Stage


@transaction.atomic
def environment_create(*, actor: Any, name: str, description: str = "", requires_promotion: bool = False,
                       follow_alias: str = "", follow_stage: str = "", requires_signature: bool = True
                       ) -> Environment:
    """Define an environment (staff only); production-like ones may require an executed promotion request, and
    (the default) only signed versions whose signature verifies."""
    if not permissions.can_manage_environments(actor):
        raise Forbidden("Only staff may define environments.")
    name = slug(name, "Environment name", 64)
    if follow_alias:
        follow_alias = validation.alias_name(follow_alias)
    if follow_stage and follow_stage not in (Stage.STAGING, Stage.PRODUCTION):
        raise InvalidInput("follow_stage must be Staging or Production (or empty).")
    if Environment.objects.filter(name=name).exists():
        raise AlreadyExists(f"Environment {name!r} already exists.")
    try:
        with transaction.atomic():
            env = Environment.objects.create(
                name=name, description=validation.text(description, "Description", 5000),
                requires_promotion=bool(requires_promotion),
                requires_signature=bool(requires_signature), follow_alias=follow_alias, follow_stage=follow_stage)
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise AlreadyExists(f"Environment {name!r} already exists.")
    events.emit("environment.created", actor=actor, target=env, data={
        "name": name, "requires_promotion": env.requires_promotion,
        "requires_signature": env.requires_signature, "follow_alias": follow_alias,
        "follow_stage": follow_stage})
    return env


@transaction.atomic
def endpoint_create(*, actor: Any, name: str, environment: Environment, model: RegisteredModel,
                    description: str = "") -> Endpoint:
    """Create an empty serving slot for `model` in `environment` (maintainers of the model)."""
    model = model_lock(model)  # the lock order of registry/locking.py: the model first, though only referenced
    if not registry_permissions.can_view(actor, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    if not registry_permissions.can_maintain(actor, model):
        raise Forbidden(f"You need the maintainer role on model {model.name!r} to create an endpoint for it.")
    name = slug(name, "Endpoint name", 100)
    if Endpoint.objects.filter(name=name).exists():
        raise AlreadyExists(f"Endpoint {name!r} already exists.")
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(name=name, environment=environment, model=model, created_by=actor,
                                               description=validation.text(description, "Description", 5000))
    except IntegrityError:  # a concurrent request took the name between the check and the insert
        raise AlreadyExists(f"Endpoint {name!r} already exists.")
    events.emit("endpoint.created", actor=actor, target=endpoint, data={
        **scope(endpoint), "endpoint": name, "environment": environment.name})
    return endpoint
