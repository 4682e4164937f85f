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


@shared_task(acks_late=True)
def promotion_evidence_check(*, request_id: int) -> list[str]:
    """Mark the approvals of a request stale whose evidence changed; return why (safe to run twice)."""
    from governance import evidence

    return evidence.promotion_evidence_check(request_id=request_id)


@shared_task(bind=True, acks_late=True, max_retries=8)
def notification_send(self, *, action: str, target_id: int, actor_id: int | None, actor_name: str, mark: str,
                      note: str = "") -> int:
    """Email whoever a committed review event concerns; return how many messages went out. A mail server that
    fails is retried with backoff by a worker; run in-process (no broker) the failure goes to the caller's log."""
    from governance import notifications

    try:
        return notifications.notification_send(action=action, target_id=target_id, actor_id=actor_id,
                                               actor_name=actor_name, mark=mark, note=note)
    except (OSError, SMTPException) as exc:
        if self.request.is_eager:  # an eager retry would run at once, in the request: do not hold the page
            raise
        raise self.retry(exc=exc, countdown=min(1800, 30 * 2 ** self.request.retries))
