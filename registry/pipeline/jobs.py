"""Durable jobs: a database row per unit of background work, dispatched after commit, claimed idempotently, swept.

The broker message carries only the job id. A job is claimed under a row lock (queued, or running with a stale
heartbeat after its worker died), so a redelivered or re-dispatched message never runs finished work twice. While a
handler runs, a heartbeat thread keeps the row fresh, so a killed worker's job is swept and run again within about
STRATUM_JOB_STALE_SECONDS + STRATUM_JOB_SWEEP_SECONDS. If the broker is down when work is queued, the row stays queued
and the periodic sweeper dispatches it later; after a failed dispatch a process stops trying for a few seconds, so
requests never wait on a broker that is down. A handler that hits a transient database error (deadlock, lock or
serialization failure, lost connection) is queued again with backoff; one that must wait for other work (a
conversion for its scan) raises `Deferred` and is queued again without spending an attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from registry.errors import database_busy
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


class Deferred(Exception):
    """Raised by a handler whose job must wait (for another job, say): it is queued again after `countdown` seconds
    without spending an attempt."""

    def __init__(self, reason: str, countdown: float = 5) -> None:
        super().__init__(reason)
        self.countdown = countdown


def stale_after() -> timedelta:
    """How long a running job may go without a heartbeat before it counts as abandoned by a dead worker."""
    return timedelta(seconds=float(getattr(settings, "STRATUM_JOB_STALE_SECONDS", 30)))


def redispatch_after() -> timedelta:
    """How long a dispatched job may stay queued before the sweeper sends it again (its message may be lost)."""
    return timedelta(seconds=float(getattr(settings, "STRATUM_JOB_REDISPATCH_SECONDS", 120)))


def heartbeat_interval() -> float:
    """Seconds between two heartbeats of a running job: several per stale period, so one late beat is harmless."""
    return max(stale_after().total_seconds() / 6, 0.2)


def transient_database_error(exc: BaseException) -> bool:
    """Whether `exc` is a database failure that a later attempt may not meet: busy (a lock or statement timeout, a
    deadlock, a serialization failure, SQLite locked) or a connection that was lost or refused."""
    if isinstance(exc, InterfaceError) or database_busy(exc):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    # 08xxx: connection exceptions; 57P01-57P03: the server shut down, crashed or is starting.
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
        return True
    return connection.vendor != "sqlite" and not sqlstate and not connection.is_usable()


def retry_countdown(attempt: int) -> float:
    """Seconds to wait before attempt `attempt` + 1: exponential from STRATUM_JOB_RETRY_BASE_SECONDS, jittered."""
    base = float(getattr(settings, "STRATUM_JOB_RETRY_BASE_SECONDS", 2))
    return min(base * 2 ** max(attempt - 1, 0), 300) * random.uniform(0.8, 1.2)


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


class _DispatchPause:
    """After a failed dispatch this process sends nothing for STRATUM_JOB_DISPATCH_PAUSE_SECONDS: the rows wait for
    the sweeper, and requests do not each wait out a broker connect."""

    def __init__(self) -> None:
        self.until = 0.0

    def active(self) -> bool:
        return time.monotonic() < self.until

    def start(self) -> None:
        self.until = time.monotonic() + float(getattr(settings, "STRATUM_JOB_DISPATCH_PAUSE_SECONDS", 10))


_dispatch_pause = _DispatchPause()


def job_dispatch(job_id: int, *, countdown: float = 0) -> bool:
    """Send a job's id to the broker; a broker outage is logged and left to the sweeper. Return whether it went."""
    from registry import tasks

    eager = bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))  # in-process: there is no broker to be down
    if not eager and _dispatch_pause.active():
        log.info("job %s not dispatched: the broker failed moments ago; the sweeper will send it", job_id)
        return False
    try:
        tasks.job_execute.apply_async(args=[job_id], retry=False, countdown=countdown or None)
    except Exception as exc:  # the broker is down: the row stays queued, the sweeper sends it later
        if not eager:
            _dispatch_pause.start()
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


class _Heartbeat:
    """A thread that refreshes a running job's heartbeat until stopped, so the sweeper knows its worker lives."""

    def __init__(self, job: Job) -> None:
        self.job_id, self.attempt = job.pk, job.attempts
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"job-{job.pk}-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        # Inside an open transaction (a test, an eager run) the claim is not visible to others, nor is a heartbeat.
        if not transaction.get_connection().in_atomic_block:
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(heartbeat_interval()):
                try:
                    Job.objects.filter(pk=self.job_id, state=JobState.RUNNING, attempts=self.attempt).update(
                        heartbeat_at=timezone.now())
                except Exception as exc:  # a missed beat only risks a duplicate run, which the claim absorbs
                    log.warning("heartbeat of job %s failed (%s)", self.job_id, exc)
                    connections.close_all()  # this thread's own connections: the next beat reconnects
        finally:
            connections.close_all()


def _record_failure(job: Job, exc: Exception) -> None:
    """Queue the job again (deferred, transient or retryable errors, with a delay) or record that it failed."""
    if isinstance(exc, Deferred):
        attempts, countdown, retry = job.attempts - 1, exc.countdown, True  # waiting spends no attempt
        error = f"Waiting: {exc}"
    else:
        transient = transient_database_error(exc)
        if transient and not connection.in_atomic_block:
            connection.close()  # a lost or broken connection: the next query opens a fresh one
        retry = job.attempts < job.max_attempts and (transient or getattr(exc, "retryable", False))
        attempts = job.attempts
        countdown = float(getattr(exc, "countdown", 0) or 0) or (retry_countdown(job.attempts) if transient else 0)
        error = f"{exc.__class__.__name__}: {exc}"
    Job.objects.filter(pk=job.pk).update(
        state=JobState.QUEUED if retry else JobState.FAILED, attempts=attempts, error=error[:5000],
        finished_at=None if retry else timezone.now(), dispatched_at=None, heartbeat_at=None)
    if retry and not (isinstance(exc, Deferred) and getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)):
        # An eager dispatch would run the deferred job again at once, forever: it waits for what it waits on to
        # finish (see _wake_waiting) or for the sweeper.
        job_dispatch(job.pk, countdown=countdown)


def _wake_waiting(job: Job) -> None:
    """Send the deferred jobs of the same artifact (a conversion waiting for its scan) now that this one is done."""
    if job.artifact_id is None:
        return
    waiting = Job.objects.filter(artifact_id=job.artifact_id, state=JobState.QUEUED, error__startswith="Waiting: ")
    for job_id in waiting.exclude(pk=job.pk).values_list("pk", flat=True):
        job_dispatch(job_id)


def job_run(job_id: int) -> Job | None:
    """Claim and perform a job; record success or failure. Safe to call twice for the same id."""
    job = job_claim(job_id)
    if job is None:
        return None
    handler = _handlers.get(job.kind)
    try:
        with _Heartbeat(job):
            if handler is None:
                raise RuntimeError(f"no handler for {job.kind} jobs")
            _slow_down_for_tests(job)
            result = handler(job)
    except Exception as exc:
        if isinstance(exc, Deferred):
            log.info("job %s waits: %s", job.pk, exc)
        else:
            log.exception("job %s failed", job.pk)
        _record_failure(job, exc)
    else:
        Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
            state=JobState.SUCCEEDED, progress=100, result=result or {}, finished_at=timezone.now())
    job.refresh_from_db()
    if not job.active:
        _wake_waiting(job)
    return job


def jobs_sweep(*, now=None) -> int:
    """Re-dispatch queued jobs that never started and running jobs whose worker went silent; return how many."""
    now = now or timezone.now()
    never_started = Q(state=JobState.QUEUED) & (Q(dispatched_at__isnull=True)
                                                | Q(dispatched_at__lt=now - redispatch_after()))
    abandoned = Q(state=JobState.RUNNING, heartbeat_at__lt=now - stale_after())
    ids = list(Job.objects.filter(never_started | abandoned).order_by("pk").values_list("pk", flat=True)[:500])
    for job_id in ids:
        if not job_dispatch(job_id):
            break  # the broker is down: the rest wait for the next sweep
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


__all__ = ["Deferred", "JobKind", "job_claim", "job_dispatch", "job_enqueue", "job_progress", "job_run", "jobs_sweep",
           "register_handler"]
