"""Thin Celery entry points for governance's periodic work (scheduled in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def audit_checkpoint_create() -> int | None:
    """Sign the audit chain's head; return the sequence number signed (None when nothing was new)."""
    from governance import services

    checkpoint = services.audit_checkpoint_create()
    return checkpoint.seq if checkpoint else None


@shared_task(acks_late=True)
def promotion_expire_stale() -> int:
    """Expire promotion requests left undecided too long; return how many."""
    from governance import services

    return services.promotion_expire_stale()
