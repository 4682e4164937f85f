"""Scan use cases: queue a static scan of an artifact's content and record the verdict (audited)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from registry import events
from registry.artifacts.storage import blob_open
from registry.locking import model_lock
from registry.models import Artifact, ArtifactScan, Job, JobKind
from registry.pipeline import jobs
from registry.pipeline.scan.analysis import SCANNER, scan_file


def scan_limits() -> tuple[int, float]:
    """Return (max bytes, timeout seconds) of one scan, from settings."""
    return (int(getattr(settings, "STRATUM_SCAN_MAX_BYTES", 2 * 1024**3)),
            float(getattr(settings, "STRATUM_SCAN_TIMEOUT_SECONDS", 120)))


def scan_enqueue(artifact: Artifact, *, rerun: bool = False) -> Job:
    """Queue the scan of an artifact's current content (once per content unless `rerun`)."""
    return jobs.job_enqueue(
        kind=JobKind.SCAN, key=f"scan:{artifact.pk}:{artifact.blob_id}", version=artifact.version,
        artifact=artifact, label=artifact.path, params={"sha256": artifact.blob_id}, rerun=rerun)


def _summary(scan: ArtifactScan) -> dict[str, Any]:
    return {"verdict": scan.verdict, "quarantined": scan.quarantined, "offending": scan.offending,
            "globals": len(scan.globals_found), "scanner": scan.scanner, "duration_ms": scan.duration_ms}


def _scan_blob(artifact: Artifact) -> tuple[Any, str]:
    """Scan an artifact's blob by the format its content has now (detection improves with the scanner)."""
    from registry.artifacts.formats import SNIFF_BYTES, detect_format
    from registry.pipeline.scan.analysis import ScanReport

    max_bytes, timeout = scan_limits()
    if artifact.size > max_bytes:
        return ScanReport(verdict="error", detail=f"file of {artifact.size} bytes exceeds the scan limit of "
                                                  f"{max_bytes} bytes; quarantined"), artifact.format
    with blob_open(artifact.blob) as fh:
        fmt = detect_format(fh.read(SNIFF_BYTES))
        fh.seek(0)
        return scan_file(fh, fmt=fmt, max_bytes=max_bytes, timeout=timeout), fmt


def artifact_scan_run(job: Job) -> dict[str, Any]:
    """Perform a scan job: read the blob through the static scanner and store one verdict per content; a scan made
    by an older scanner version is redone and updated in place (newly unsafe files are quarantined, audited)."""
    artifact = Artifact.objects.select_related("blob", "version__model").filter(pk=job.artifact_id).first()
    sha256 = job.params.get("sha256", "")
    if artifact is None or artifact.blob_id != sha256:
        return {"superseded": True}  # the file was deleted or replaced; its new content has its own job
    existing = ArtifactScan.objects.filter(artifact=artifact, blob_id=sha256).first()
    if existing is not None and existing.scanner == SCANNER:  # a redelivered job: the verdict is already recorded
        return _summary(existing)
    report, fmt = _scan_blob(artifact)
    jobs.job_progress(job, 90)
    fields = {"verdict": report.verdict, "quarantined": report.quarantined, "globals_found": report.globals,
              "offending": report.offending, "members": report.members, "detail": report.detail[:5000],
              "scanner": report.scanner, "duration_ms": report.duration_ms}
    with transaction.atomic():
        model_lock(artifact.version.model_id)  # the lock order of registry/locking.py: the model first
        if fmt != artifact.format:
            Artifact.objects.filter(pk=artifact.pk).update(format=fmt)
            artifact.format = fmt
        scan, created = ArtifactScan.objects.select_for_update().get_or_create(
            artifact=artifact, blob_id=sha256, defaults=fields)
        if created:
            events.emit("model_version.artifact_scanned", actor=None, target=artifact.version, data={
                "path": artifact.path, "sha256": sha256, "verdict": scan.verdict, "quarantined": scan.quarantined,
                "offending": scan.offending, "scanner": scan.scanner, "duration_ms": scan.duration_ms})
        elif scan.scanner != SCANNER:
            _record_rescan(scan, fields, artifact)
        if created and scan.verdict == "safe" and artifact.format in ("pickle", "joblib") and getattr(
                settings, "STRATUM_CONVERT_ON_UPLOAD", False):
            from registry.pipeline.convert import convert_enqueue

            convert_enqueue(artifact=artifact, actor=artifact.version.creator)
    return _summary(scan)


def _record_rescan(scan: ArtifactScan, fields: dict[str, Any], artifact: Artifact) -> None:
    """Replace an older scanner's verdict; a file it called clean and this one does not is quarantined now."""
    from registry.pipeline.scan.rescan import record_newly_quarantined

    before = {"verdict": scan.verdict, "quarantined": scan.quarantined, "scanner": scan.scanner}
    for name, value in fields.items():
        setattr(scan, name, value)
    scan.save(update_fields=list(fields))
    newly = scan.quarantined and not before["quarantined"]
    if newly:
        record_newly_quarantined()
    events.emit("model_version.artifact_quarantined" if newly else "model_version.artifact_rescanned",
                actor=None, target=artifact.version, data={
                    "path": artifact.path, "sha256": scan.blob_id, "verdict": scan.verdict,
                    "quarantined": scan.quarantined, "offending": scan.offending, "detail": scan.detail[:500],
                    "scanner": scan.scanner, "previous_scanner": before["scanner"],
                    "previous_verdict": before["verdict"]})


def version_scan_request(*, version: Any, actor: Any) -> list[Job]:
    """Queue a fresh scan of every file of a version (contributors); the request is audited."""
    from registry import permissions
    from registry.errors import Forbidden

    if not permissions.can_contribute(actor, version.model):
        raise Forbidden(f"You do not have permission to rescan files of model {version.model.name!r}.")
    with transaction.atomic():
        model_lock(version.model_id)  # the lock order of registry/locking.py: the model first
        queued = []
        for artifact in Artifact.objects.filter(version=version).select_related("version__model"):
            ArtifactScan.objects.filter(artifact=artifact, blob_id=artifact.blob_id).delete()
            queued.append(scan_enqueue(artifact, rerun=True))
        events.emit("model_version.scan_requested", actor=actor, target=version,
                    data={"paths": [job.target_label for job in queued]})
    return queued


jobs.register_handler(JobKind.SCAN, artifact_scan_run)
