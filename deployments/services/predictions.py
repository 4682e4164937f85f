"""Prediction trace records: forgotten after the retention window (their lineage batches stay)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from deployments.models import PredictionBatch, PredictionRecord


def prediction_records_purge(*, now: datetime | None = None) -> int:
    """Delete trace records older than STRATUM_PREDICTION_RETENTION_DAYS, and the routing rows no record names any
    more; return how many records. A system task: no actor, no event (the records are traffic, and their lineage
    prediction batches, which stay, carry the counts)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.STRATUM_PREDICTION_RETENTION_DAYS)
    deleted, _ = PredictionRecord.objects.filter(at__lt=cutoff).delete()
    # A flush adds records only to a batch of the current window, whose records are recent: an empty one is done.
    PredictionBatch.objects.filter(~Exists(PredictionRecord.objects.filter(batch=OuterRef("pk")))).delete()
    return deleted
