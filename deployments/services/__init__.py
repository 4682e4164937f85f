"""Every write of the deployments app: environments, endpoints, rollouts and their manual controls, the rollout
monitor's judgement, outcomes.

Each service takes the acting user, locks the endpoint it changes, checks permission and state, writes, rewrites
the endpoint's routing snapshot (bumping its generation and recording the change in the routing history), and
emits one domain event, which the audit trail records in the same transaction. Callers use the names below; the
modules of this package are how the code is arranged, by area.
"""

from deployments.services.controls import (
    deployment_abort,
    deployment_pause,
    deployment_promote,
    deployment_resume,
    deployment_rollback,
)
from deployments.services.environments import endpoint_create, environment_create
from deployments.services.monitor import rollout_evaluate, rollouts_evaluate_all
from deployments.services.outcomes import outcome_record
from deployments.services.plans import DEFAULT_CANARY_STEPS
from deployments.services.predictions import prediction_records_purge
from deployments.services.rollouts import deployment_start
from deployments.services.routes import servable_route

__all__ = [
    "DEFAULT_CANARY_STEPS",
    "deployment_abort",
    "deployment_pause",
    "deployment_promote",
    "deployment_resume",
    "deployment_rollback",
    "deployment_start",
    "endpoint_create",
    "environment_create",
    "outcome_record",
    "prediction_records_purge",
    "rollout_evaluate",
    "rollouts_evaluate_all",
    "servable_route",
]
