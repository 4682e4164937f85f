"""Business outcomes reported back for an A/B test's arms (a conversion, a revenue figure), for its comparison."""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction

from deployments import permissions
from deployments import routing as routing_rules
from deployments.models import Deployment, Outcome, Strategy
from deployments.services.common import whole_number
from registry import validation
from registry.errors import Forbidden, InvalidInput, NotFound


@transaction.atomic
def outcome_record(*, deployment: Deployment, actor: Any, metric: str, value: Any, key: str | None = None,
                   version: Any = None, request_id: str = "") -> Outcome:
    """Record a business outcome for one A/B arm, found from the caller's key (sticky) or named by version."""
    endpoint = deployment.endpoint
    if not permissions.can_view_endpoint(actor, endpoint):
        raise NotFound(f"Deployment #{deployment.pk} not found.")
    if not permissions.can_report_outcomes(actor, endpoint):
        raise Forbidden(f"You need the contributor role on model {endpoint.model.name!r} to report outcomes.")
    if deployment.strategy != Strategy.AB:
        raise InvalidInput(f"Deployment #{deployment.pk} is a {deployment.get_strategy_display()} rollout; outcomes "
                           "are reported for A/B tests.")
    metric = validation.text(metric, "metric", 100).strip()
    if not metric:
        raise InvalidInput("metric is required, e.g. \"converted\".")
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput("value must be a finite number (use 0/1 for conversions).")
    if (key is None) == (version is None):
        raise InvalidInput("Name the arm by exactly one of key (the caller key used at prediction time) or version.")
    if key is not None:
        key = validation.text(key, "key", 500)
        if not key:
            raise InvalidInput("key must not be empty.")
    version_id = _arm_version_id(deployment, key=key, version=version)
    return Outcome.objects.create(deployment=deployment, version_id=version_id, metric=metric, value=float(value),
                                  key_hash=routing_rules.key_hash(key) if key else "",
                                  request_id=validation.text(request_id, "request_id", 32))


def _arm_version_id(deployment: Deployment, *, key: str | None, version: Any) -> int:
    """Return the arm's version id: the one the caller's key is sticky to, or the arm of version number `version`."""
    if key is not None:
        arm = routing_rules.route_for_bucket(
            [{"version_id": a["version_id"], "weight": a["weight"]} for a in deployment.arms],
            routing_rules.sticky_bucket(deployment.pk, key))
        return arm["version_id"]
    number = whole_number(version, "version", 1, 2**31 - 1)
    match = [a["version_id"] for a in deployment.arms if a["number"] == number]
    if not match:
        raise InvalidInput(f"Version {number} is not an arm of deployment #{deployment.pk}.")
    return match[0]
