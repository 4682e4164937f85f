"""Durable jobs: a database row per unit of background work, dispatched after commit, claimed idempotently, swept.

The broker message carries only the job id. A job is claimed under a row lock (queued, or running with a stale
heartbeat after its worker died), so a redelivered or re-dispatched message never runs finished work twice. If the
broker is down when work is queued, the row stays queued and the periodic sweeper dispatches it later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registry.models import Artifact, Job, JobKind, JobState, ModelVersion
from registry.pipeline import kinds

log = logging.getLogger(__name__)

Handler = Callable[[Job], dict[str, Any]]
_handlers: dict[str, Handler] = {}


def register_handler(kind: str, handler: Handler, *, label: str | None = None) -> None:
    """Make `kind` a job kind and install the function that performs its jobs (it returns the result payload).

    The label pages show is `label`, else the label of a `JobKind` member, else the kind itself.
    """
    if not 0 < len(str(kind)) <= Job._meta.get_field("kind").max_length:
        raise ValueError(f"A job kind is 1 to {Job._meta.get_field('kind').max_length} characters, not {kind!r}.")
    kinds.register(kind, label or getattr(kind, "label", None) or str(kind))
    _handlers[str(kind)] = handler


def stale_after() -> timedelta:
    """How long a running job may go without a heartbeat before it counts as abandoned by a dead worker."""
    return timedelta(seconds=float(getattr(settings, "STRATUM_JOB_STALE_SECONDS", 300)))


def job_enqueue(*, kind: str, key: str, version: ModelVersion | None = None, artifact: Artifact | None = None,
                label: str = "", params: dict[str, Any] | None = None, rerun: bool = False,
                max_attempts: int = 3) -> Job:
    """Record a job (once per idempotency key) and dispatch it after the surrounding transaction commits."""
    if not kinds.is_registered(kind):
        raise ValueError(f"Unknown job kind {kind!r}: no app registered a handler for it.")
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(key=key).first()
        if job is None:
            try:
                with transaction.atomic():
                    job = Job.objects.create(kind=kind, key=key, version=version, artifact=artifact,
                                             target_label=label[:500], params=params or {},
                                             max_attempts=max_attempts)
            except IntegrityError:
                job = Job.objects.select_for_update().get(key=key)
        elif rerun and not job.active:
            Job.objects.filter(pk=job.pk).update(state=JobState.QUEUED, attempts=0, progress=0, error="",
                                                 result={}, started_at=None, finished_at=None,
                                                 heartbeat_at=None, dispatched_at=None)
            job.refresh_from_db()
        else:
            return job
    transaction.on_commit(lambda: job_dispatch(job.pk))
    return job


def job_dispatch(job_id: int, *, countdown: float = 0) -> bool:
    """Send a job's id to the broker; a broker outage is logged and left to the sweeper. Return whether it went."""
    from registry import tasks

    try:
        tasks.job_execute.apply_async(args=[job_id], retry=False, countdown=countdown or None)
    except Exception as exc:  # the broker is down: the row stays queued, the sweeper sends it later
        log.warning("job %s not dispatched (%s); the sweeper will retry", job_id, exc)
        return False
    Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(dispatched_at=timezone.now())
    return True


def job_claim(job_id: int) -> Job | None:
    """Take a job for this worker: queued, or running but abandoned; None when finished or held by a live worker."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state in (JobState.SUCCEEDED, JobState.FAILED):
            return None
        if job.state == JobState.RUNNING and job.heartbeat_at and job.heartbeat_at > now - stale_after():
            return None
        if job.attempts >= job.max_attempts:
            job.state, job.finished_at = JobState.FAILED, now
            job.error = job.error or f"Gave up after {job.attempts} attempts (the worker died each time)."
            job.save(update_fields=["state", "finished_at", "error"])
            return None
        job.state, job.attempts, job.started_at, job.heartbeat_at = JobState.RUNNING, job.attempts + 1, now, now
        job.progress, job.error = 0, ""
        job.save(update_fields=["state", "attempts", "started_at", "heartbeat_at", "progress", "error"])
        return job


def job_progress(job: Job, percent: int) -> None:
    """Record progress and a heartbeat (so the sweeper knows the worker is alive)."""
    job.progress = max(0, min(100, int(percent)))
    Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(progress=job.progress, heartbeat_at=timezone.now())


def _slow_down_for_tests(job: Job) -> None:
    # STRATUM_JOB_TEST_DELAY_SECONDS lets the worker-crash integration test kill a worker mid-job.
    delay = float(getattr(settings, "STRATUM_JOB_TEST_DELAY_SECONDS", 0) or 0)
    steps = int(delay * 10)
    for i in range(steps):
        time.sleep(0.1)
        job_progress(job, i * 50 // max(steps, 1))


def job_run(job_id: int) -> Job | None:
    """Claim and perform a job; record success or failure. Safe to call twice for the same id."""
    job = job_claim(job_id)
    if job is None:
        return None
    handler = _handlers.get(job.kind)
    try:
        if handler is None:
            raise RuntimeError(f"no handler for {job.kind} jobs")
        _slow_down_for_tests(job)
        result = handler(job)
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        retry = job.attempts < job.max_attempts and getattr(exc, "retryable", False)
        Job.objects.filter(pk=job.pk).update(
            state=JobState.QUEUED if retry else JobState.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:5000],
            finished_at=None if retry else timezone.now(), dispatched_at=None)
        if retry:
            job_dispatch(job.pk, countdown=float(getattr(exc, "countdown", 0) or 0))
    else:
        Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
            state=JobState.SUCCEEDED, progress=100, result=result or {}, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def jobs_sweep(*, now=None) -> int:
    """Re-dispatch queued jobs that never started and running jobs whose worker went silent; return how many."""
    now = now or timezone.now()
    never_started = Q(state=JobState.QUEUED) & (Q(dispatched_at__isnull=True)
                                                | Q(dispatched_at__lt=now - stale_after()))
    abandoned = Q(state=JobState.RUNNING, heartbeat_at__lt=now - stale_after())
    ids = list(Job.objects.filter(never_started | abandoned).order_by("pk").values_list("pk", flat=True)[:500])
    for job_id in ids:
        job_dispatch(job_id)
    return len(ids)


# ------------------------------------------------------------------------------------------- plug point


def on_domain_event_committed(sender: Any, event: Any, **kwargs: Any) -> None:
    """Queue a scan for every file a committed version or upload added (the receiver needs no service edits)."""
    if event.target_type != "registry.modelversion":
        return
    if event.action == "model_version.created":
        paths = [f["path"] for f in event.data.get("files", [])]
        if not paths:  # the event lists every file the version was created with (uploaded or linked)
            return
        artifacts = Artifact.objects.filter(version_id=event.target_id, path__in=paths)
    elif event.action == "model_version.artifact_added":
        artifacts = Artifact.objects.filter(version_id=event.target_id, path=event.data.get("path"))
    else:
        return
    from registry.pipeline.scan import services as scan_service

    for artifact in artifacts.select_related("version__model"):
        scan_service.scan_enqueue(artifact)


__all__ = ["JobKind", "job_claim", "job_dispatch", "job_enqueue", "job_progress", "job_run", "jobs_sweep",
           "register_handler"]
