"""Thin Celery entry points for the artifact pipeline: each takes a job id, reloads, and calls the pipeline."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_execute(job_id: int) -> str | None:
    """Run one durable job (scan, load check, conversion ...); a second delivery of a finished job does nothing."""
    from registry.pipeline import handlers  # noqa: F401 - installs the job handlers
    from registry.pipeline.jobs import job_run

    job = job_run(job_id)
    return job.state if job else None


@shared_task(acks_late=True, ignore_result=True)
def jobs_sweep() -> int:
    """Re-dispatch jobs that never reached a worker or whose worker died; return how many."""
    from registry.pipeline.jobs import jobs_sweep as sweep

    return sweep()


@shared_task(acks_late=True, ignore_result=True)
def temp_sweep() -> int:
    """Remove stale spool files and job scratch folders (periodic); return how many."""
    from registry.artifacts.storage import temp_sweep as sweep

    return len(sweep())


@shared_task(acks_late=True, ignore_result=True)
def signatures_verify_all() -> int:
    """Queue a verification of every signed version (periodic); return how many."""
    from registry.pipeline.signing import signatures_verify_all as verify_all

    return verify_all()


@shared_task(acks_late=True, ignore_result=True)
def retrain_schedules_tick() -> int:
    """Fire the scheduled versioning triggers that are due (beat); return how many fired."""
    from registry.pipeline.triggers import retrain_schedules_tick as tick

    return tick()


@shared_task(acks_late=True, ignore_result=True)
def scanner_rescan_tick() -> int:
    """Rescan stored files scanned by an older scanner version, in batches (beat); return how many were queued."""
    from registry.pipeline.scan.rescan import rescan_tick

    return rescan_tick()


@shared_task(acks_late=True, ignore_result=True)
def store_collect() -> int:
    """Collect the artifact store's unreferenced blobs past their grace (beat); return how many were deleted."""
    from registry.artifacts.gc import store_collect as collect

    return len(collect().deleted)
