"""Rescan when the rules change: every stored scan made by another scanner version is redone in the background."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from registry import events
from registry.models import ArtifactScan, Job, JobKind, JobState, ScannerRescan
from registry.pipeline import jobs
from registry.pipeline.scan.analysis import SCANNER


def outdated_scans() -> QuerySet[ArtifactScan]:
    """The scans of files' current content that an older (or other) scanner version made."""
    return ArtifactScan.objects.filter(blob_id=F("artifact__blob_id")).exclude(scanner=SCANNER)


def rescan_key(scan: ArtifactScan) -> str:
    """The idempotency key of one file's rescan under the current scanner version."""
    return f"rescan:{scan.artifact_id}:{scan.blob_id}:{SCANNER}"[:200]


def rescan_tick() -> int:
    """Start the rescan for this scanner version when old scans exist, queue the next batch, finish when done.

    Returns how many jobs this tick queued. Safe to run concurrently and twice: the rescan row is unique per
    version and each file's job has an idempotency key.
    """
    rescan = ScannerRescan.objects.filter(scanner=SCANNER).first()
    if rescan is None:
        total = outdated_scans().count()
        if not total:
            return 0
        with transaction.atomic():
            rescan, created = ScannerRescan.objects.get_or_create(scanner=SCANNER, defaults={"total": total})
            if created:
                events.emit("scanner.rescan_started", actor=None, target=rescan,
                            data={"scanner": SCANNER, "files": total})
    if rescan.finished:
        return 0
    batch = list(outdated_scans().select_related("artifact__version")
                 .order_by("pk")[: int(getattr(settings, "STRATUM_RESCAN_BATCH", 500)) * 4])
    existing = set(Job.objects.filter(key__in=[rescan_key(s) for s in batch]).values_list("key", "state"))
    started = {key for key, _ in existing}
    failed = {key for key, state in existing if state == JobState.FAILED}
    queued = 0
    for scan in batch:
        if queued >= int(getattr(settings, "STRATUM_RESCAN_BATCH", 500)):
            break
        key = rescan_key(scan)
        if key in started:
            continue
        jobs.job_enqueue(kind=JobKind.SCAN, key=key, version=scan.artifact.version, artifact=scan.artifact,
                         label=scan.artifact.path, params={"sha256": scan.blob_id, "scanner": SCANNER})
        queued += 1
    if not queued and all(rescan_key(s) in failed for s in batch):
        _finish(rescan, failed=len(batch))
    return queued


def _finish(rescan: ScannerRescan, *, failed: int) -> None:
    with transaction.atomic():
        done = ScannerRescan.objects.select_for_update().get(pk=rescan.pk)
        if done.finished:
            return
        done.finished, done.finished_at = True, timezone.now()
        done.save(update_fields=["finished", "finished_at"])
        events.emit("scanner.rescan_finished", actor=None, target=done, data={
            "scanner": SCANNER, "files": done.total, "newly_quarantined": done.newly_quarantined, "failed": failed})


def rescan_status() -> dict[str, Any]:
    """The state of the rescan for the current scanner version, for the Scanner page and the API."""
    rescan = ScannerRescan.objects.filter(scanner=SCANNER).first()
    remaining = outdated_scans().count()
    if rescan is None:
        return {"scanner": SCANNER, "state": "pending" if remaining else "idle", "total": remaining, "done": 0,
                "remaining": remaining, "failed": 0, "newly_quarantined": 0, "percent": 100 if not remaining else 0,
                "started_at": None, "finished_at": None}
    failed = Job.objects.filter(key__startswith="rescan:", key__endswith=f":{SCANNER}", state=JobState.FAILED).count()
    done = max(rescan.total - remaining, 0)
    return {"scanner": SCANNER, "state": "finished" if rescan.finished else "running", "total": rescan.total,
            "done": done, "remaining": remaining, "failed": failed, "newly_quarantined": rescan.newly_quarantined,
            "percent": 100 if rescan.finished or not rescan.total else min(100, done * 100 // rescan.total),
            "started_at": rescan.started_at, "finished_at": rescan.finished_at}


def record_newly_quarantined() -> None:
    """Count a file the running rescan quarantined (called in the scan's transaction)."""
    ScannerRescan.objects.filter(scanner=SCANNER).update(newly_quarantined=F("newly_quarantined") + 1)
