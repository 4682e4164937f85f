"""Thin Celery entry points of the deployments app: the rollout monitor, the prediction trace's retention."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def rollout_monitor_tick() -> int:
    """Evaluate every progressing rollout (beat); return how many were looked at."""
    from deployments.services import rollouts_evaluate_all

    return rollouts_evaluate_all()


@shared_task(acks_late=True, ignore_result=True)
def rollout_evaluate(deployment_id: int) -> str | None:
    """Evaluate one rollout now (queued when it starts); safe to run twice."""
    from deployments.models import Deployment
    from deployments.services import rollout_evaluate as evaluate

    deployment = Deployment.objects.select_related("endpoint").filter(pk=deployment_id).first()
    if deployment is None:
        return None
    return evaluate(deployment=deployment).phase


@shared_task(acks_late=True, ignore_result=True)
def prediction_records_purge() -> int:
    """Forget request ids older than STRATUM_PREDICTION_RETENTION_DAYS (safe to run twice)."""
    from deployments.services import prediction_records_purge as purge

    return purge()
