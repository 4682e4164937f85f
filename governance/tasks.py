"""Thin Celery entry points for governance's periodic work (scheduled in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from smtplib import SMTPException

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


@shared_task(acks_late=True, autoretry_for=(OSError, SMTPException), retry_backoff=30, retry_backoff_max=1800,
             max_retries=8)
def notification_send(*, action: str, target_id: int, actor_id: int | None, actor_name: str, mark: str,
                      note: str = "") -> int:
    """Email whoever a committed review event concerns; return how many messages went out."""
    from governance import notifications

    return notifications.notification_send(action=action, target_id=target_id, actor_id=actor_id,
                                           actor_name=actor_name, mark=mark, note=note)
