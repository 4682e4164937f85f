"""Prediction trace records: forgotten after the retention window (their batches stay in the lineage)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from deployments.models import PredictionRecord


def prediction_records_purge(*, now: datetime | None = None) -> int:
    """Delete trace records older than STRATUM_PREDICTION_RETENTION_DAYS; return how many. A system task: no
    actor, no event (the records are traffic, and their batches, which stay, carry the counts)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.STRATUM_PREDICTION_RETENTION_DAYS)
    deleted, _ = PredictionRecord.objects.filter(at__lt=cutoff).delete()
    return deleted
