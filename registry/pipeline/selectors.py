"""Pipeline reads shared by the version page, the API and governance's gates."""

from __future__ import annotations

from typing import Any

from registry.models import (
    Artifact,
    ArtifactRelease,
    ArtifactScan,
    Job,
    ModelVersion,
    ReleaseState,
    VersionSignature,
)
from registry.pipeline.scan.trust import (  # the trust predicate, for the other apps (the gateway)
    TrustState,
    artifact_trust,
    decide,
    ensure_digest_servable,
    quarantined_digests,
    versions_trust,
)

__all__ = ["CLEAN", "NO_ARTIFACTS", "PENDING", "QUARANTINED", "TrustState", "artifact_trust",
           "ensure_digest_servable", "quarantined_digests", "version_jobs", "version_scan_status",
           "version_signature_status", "versions_signature_state", "versions_trust"]

# Re-exported for the serving gateway: the files outside an ONNX model that loading it would read.
from registry.pipeline.scan.onnx_refs import external_data_refs  # noqa: F401

CLEAN, QUARANTINED, PENDING, NO_ARTIFACTS = "clean", "quarantined", "pending", "no_artifacts"


def version_jobs(*, version: ModelVersion, limit: int = 20) -> list[Job]:
    """Return a version's most recent jobs, newest first."""
    return list(Job.objects.filter(version=version).order_by("-created_at", "-pk")[:limit])


def version_scan_status(*, version: ModelVersion) -> dict[str, Any]:
    """Return the scan verdict and trust of each file of the version's current tree and the overall status for the
    gate (a file released by four-eyes review counts as clean; one still unscanned, of any format, as pending)."""
    artifacts = list(Artifact.objects.filter(version=version).order_by("path"))
    scans = {(s.artifact_id, s.blob_id): s for s in ArtifactScan.objects.filter(artifact__version=version)}
    releases = {r.blob_id: r for r in ArtifactRelease.objects.filter(model_id=version.model_id,
                                                                     state=ReleaseState.APPROVED)}
    rows = []
    for artifact in artifacts:
        scan = scans.get((artifact.pk, artifact.blob_id))
        trust = decide(path=artifact.path, sha256=artifact.blob_id, fmt=artifact.format, scan=scan,
                       release=releases.get(artifact.blob_id))
        rows.append({
            "path": artifact.path, "sha256": artifact.blob_id, "format": artifact.format,
            "verdict": scan.verdict if scan else "pending",
            "quarantined": trust.state == TrustState.QUARANTINED if scan else None,
            "trust": str(trust.state), "release_id": trust.release_id,
            "globals": scan.globals_found if scan else [], "offending": scan.offending if scan else [],
            "members": scan.members if scan else [], "detail": scan.detail if scan else "",
            "scanner": scan.scanner if scan else "", "duration_ms": scan.duration_ms if scan else None,
            "scanned_at": scan.created_at.isoformat() if scan else None,
        })
    released = [r["path"] for r in rows if r["trust"] == TrustState.RELEASED]
    if not rows:
        status, detail = NO_ARTIFACTS, "The version has no files."
    elif any(r["quarantined"] for r in rows):
        bad = [r["path"] for r in rows if r["quarantined"]]
        status, detail = QUARANTINED, f"Quarantined: {', '.join(bad)}."
    elif any(r["verdict"] == "pending" for r in rows):
        waiting = [r["path"] for r in rows if r["verdict"] == "pending"]
        status, detail = PENDING, f"Not scanned yet: {', '.join(waiting)}."
    else:
        status, detail = CLEAN, f"All {len(rows)} file(s) scanned clean."
        if released:
            detail = f"All {len(rows)} file(s) scanned clean or released after review ({', '.join(released)})."
    return {"status": status, "detail": detail, "artifacts": rows, "released": released}


def _signature_verdict(signature: VersionSignature, last: Any, current: dict[str, str]
                       ) -> tuple[str, str, dict[str, str], list[str]]:
    """(status, detail, signed files, signed documents) of a signature against the version's current tree and its
    latest verification (None when never verified)."""
    from registry.pipeline.signing import SIGNED_DOCUMENT_DIR

    # The documents a signature covers besides the files (the AI-BOM) are checked by verification, not here.
    documents = sorted(p for p in signature.manifest if p.split("/")[0] == SIGNED_DOCUMENT_DIR)
    signed = {p: sha for p, sha in signature.manifest.items() if p not in documents}
    changed = sorted(p for p in signed if p in current and current[p] != signed[p])
    added, removed = sorted(set(current) - set(signed)), sorted(set(signed) - set(current))
    if changed or added or removed:
        parts = [f"{label}: {', '.join(f)}" for label, f in
                 (("changed", changed), ("added", added), ("removed", removed)) if f]
        return "failed", "Files differ from the signed tree — " + "; ".join(parts) + ".", signed, documents
    if last is not None and not last.ok:
        return "failed", last.detail, signed, documents
    return "verified", f"Signed tree of {len(signed)} file(s) verified.", signed, documents


def version_signature_status(*, version: ModelVersion) -> dict[str, Any]:
    """Return the signature state a gate and a page show: unsigned, verified or failed (with the files named)."""
    signature = VersionSignature.objects.filter(version=version).first()
    if signature is None:
        return {"status": "unsigned", "detail": "The version has not been signed.", "signature": None}
    last = signature.verifications.first()
    current = dict(Artifact.objects.filter(version=version).values_list("path", "blob_id"))
    status, detail, signed, documents = _signature_verdict(signature, last, current)
    info = {"id": signature.pk, "key_fingerprint": signature.key_fingerprint,
            "signed_at": signature.signed_at.isoformat(), "bundle_sha256": signature.bundle_id,
            "files": len(signed), "documents": documents,
            "last_verified_at": last.verified_at.isoformat() if last else None}
    return {"status": status, "detail": detail, "signature": info}


def versions_signature_state(*, version_ids: list[int]) -> dict[int, str]:
    """Each version's signature state as version_signature_status names it (unsigned, verified or failed), for a
    page of versions in three queries: the latest signatures, their latest verifications, the current trees."""
    from registry.models import SignatureVerification

    latest: dict[int, VersionSignature] = {}
    for signature in VersionSignature.objects.filter(version_id__in=version_ids).order_by(
            "version_id", "-signed_at", "-pk"):
        latest.setdefault(signature.version_id, signature)
    last: dict[int, Any] = {}
    for check in SignatureVerification.objects.filter(signature__in=list(latest.values())).order_by(
            "signature_id", "-verified_at", "-pk"):
        last.setdefault(check.signature_id, check)
    trees: dict[int, dict[str, str]] = {vid: {} for vid in version_ids}
    for vid, path, sha in Artifact.objects.filter(version_id__in=version_ids).values_list("version_id", "path",
                                                                                         "blob_id"):
        trees[vid][path] = sha
    states = {}
    for vid in version_ids:
        signature = latest.get(vid)
        if signature is None:
            states[vid] = "unsigned"
            continue
        states[vid] = _signature_verdict(signature, last.get(signature.pk), trees[vid])[0]
    return states
