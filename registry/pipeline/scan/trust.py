"""The one trust predicate: whether a file's bytes may leave Stratum, by any route (downloads, the MLflow routes, the
gateway, conversion, signing), and the trust state of whole versions for pages and APIs in a fixed number of queries.

A file is servable when it is clean or released. It is quarantined when its scan says so and no approved four-eyes
release of its content (digest), in its model, accepts every global the scan objected to. It is pending while it is
of a pickle family (or may hold pickles: a zip, a compressed file) and has no verdict yet. Any other file (ONNX, CSV,
PNG, JSON, ...) needs no scan to be served, but a scan that quarantined it withholds it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db.models import F, FilteredRelation, Q, QuerySet

from registry.errors import Quarantined
from registry.models import Artifact, ArtifactRelease, ArtifactScan, ReleaseState

# Formats whose bytes are withheld until a scan has passed them: pickles, and containers that may hold pickles.
NEEDS_SCAN_FORMATS = frozenset({"pickle", "joblib", "zip", "compressed"})


class TrustState(StrEnum):
    """The trust state of one file or of a whole version (worst file wins: quarantined, pending, released, clean)."""

    CLEAN = "clean"
    PENDING = "pending"
    QUARANTINED = "quarantined"
    RELEASED = "released"


_RANK = {TrustState.CLEAN: 0, TrustState.RELEASED: 1, TrustState.PENDING: 2, TrustState.QUARANTINED: 3}


@dataclass(frozen=True)
class Trust:
    """One file's trust: its state, what the scan objected to, and why, in words a person can act on."""

    state: TrustState
    path: str
    sha256: str
    offending: tuple[str, ...] = ()
    detail: str = ""
    release_id: int | None = None

    @property
    def servable(self) -> bool:
        return self.state in (TrustState.CLEAN, TrustState.RELEASED)


@dataclass
class VersionTrust:
    """A version's trust: the worst state of its files, the files that are not clean, and one sentence on why."""

    state: TrustState = TrustState.CLEAN
    files: list[Trust] = field(default_factory=list)  # every file that is not plainly clean

    @property
    def servable(self) -> bool:
        return self.state in (TrustState.CLEAN, TrustState.RELEASED)

    @property
    def offending(self) -> list[str]:
        return sorted({g for f in self.files if f.state == TrustState.QUARANTINED for g in f.offending})

    @property
    def detail(self) -> str:
        quarantined = [f for f in self.files if f.state == TrustState.QUARANTINED]
        if quarantined:
            return "Quarantined by the artifact scan: " + "; ".join(f.detail for f in quarantined) + (
                ". No file of this version is served until a model maintainer and an administrator release it.")
        pending = [f.path for f in self.files if f.state == TrustState.PENDING]
        if pending:
            return f"Artifact scan in progress: {', '.join(pending)}; these files are served once they scan clean."
        released = [f.path for f in self.files if f.state == TrustState.RELEASED]
        if released:
            return f"Released after review (four-eyes): {', '.join(released)}."
        return ""

    def add(self, trust: Trust) -> None:
        if trust.state == TrustState.CLEAN:
            return
        self.files.append(trust)
        if _RANK[trust.state] > _RANK[self.state]:
            self.state = trust.state


def _quarantine_detail(path: str, verdict: str, offending: Iterable[str], scan_detail: str) -> str:
    names = ", ".join(offending)
    if names:
        return f"{path} would import {names}"
    return f"{path} could not be scanned ({scan_detail or verdict})"


def covers(release: Any, offending: Iterable[str]) -> bool:
    """Whether an approved release accepts every global a scan objected to (a rescan that finds more is not
    covered)."""
    return release is not None and release.state == ReleaseState.APPROVED and (
        set(offending) <= set(release.accepted_globals or []))


def decide(*, path: str, sha256: str, fmt: str, scan: Any, release: Any = None) -> Trust:
    """Return a file's trust from its current content's scan (or None) and its model's approved release (or None)."""
    if scan is not None and scan.quarantined:
        offending = tuple(scan.offending or ())
        if covers(release, offending):
            return Trust(TrustState.RELEASED, path, sha256, offending, f"{path} released after review",
                         release_id=release.pk)
        return Trust(TrustState.QUARANTINED, path, sha256, offending,
                     _quarantine_detail(path, scan.verdict, offending, scan.detail))
    if scan is None and fmt in NEEDS_SCAN_FORMATS:
        return Trust(TrustState.PENDING, path, sha256, (), f"{path} ({fmt}) has not been scanned yet")
    return Trust(TrustState.CLEAN, path, sha256)


def _approved_release(model_id: int, sha256: str) -> ArtifactRelease | None:
    return ArtifactRelease.objects.filter(model_id=model_id, blob_id=sha256, state=ReleaseState.APPROVED).first()


def artifact_trust(artifact: Artifact) -> Trust:
    """Return the trust of a version file's current content (one query, two when it is quarantined)."""
    scan = ArtifactScan.objects.filter(artifact_id=artifact.pk, blob_id=artifact.blob_id).first()
    release = None
    if scan is not None and scan.quarantined:
        model_id = artifact.version.model_id
        release = _approved_release(model_id, artifact.blob_id)
    return decide(path=artifact.path, sha256=artifact.blob_id, fmt=artifact.format, scan=scan, release=release)


def _refusal(trust: Trust) -> Quarantined:
    if trust.state == TrustState.PENDING:
        message = (f"Quarantined until scanned: {trust.detail}; a pickle-family file is served only once its scan "
                   "passes it. Try again shortly.")
    else:
        message = (f"Quarantined: {trust.detail}. Its bytes are served to no one until a model maintainer and an "
                   "administrator release this content.")
    return Quarantined(message, details={"path": trust.path, "sha256": trust.sha256, "scan_status": str(trust.state),
                                         "offending": list(trust.offending)})


def ensure_servable(artifact: Artifact) -> Trust:
    """Return the artifact's trust, or raise Quarantined naming why its bytes are withheld."""
    trust = artifact_trust(artifact)
    if not trust.servable:
        raise _refusal(trust)
    return trust


def digest_trust(sha256: str, *, path: str = "") -> Trust:
    """Return the trust of content known only by its digest (a run's file, a gateway model): quarantined when any
    version file with this content was quarantined and its model has not released it."""
    label = path or f"content {sha256[:12]}…"
    scans = list(ArtifactScan.objects.filter(blob_id=sha256, quarantined=True)
                 .values_list("artifact__version__model_id", "verdict", "offending", "detail"))
    if not scans:
        return Trust(TrustState.CLEAN, label, sha256)
    releases = {r.model_id: r for r in ArtifactRelease.objects.filter(
        blob_id=sha256, state=ReleaseState.APPROVED, model_id__in={s[0] for s in scans})}
    for model_id, verdict, offending, detail in scans:
        if not covers(releases.get(model_id), offending or ()):
            return Trust(TrustState.QUARANTINED, label, sha256, tuple(offending or ()),
                         _quarantine_detail(label, verdict, offending or (), detail))
    return Trust(TrustState.RELEASED, label, sha256)


def quarantined_digests(digests: Iterable[str]) -> set[str]:
    """Return which of these contents are quarantined (withheld everywhere), in two queries at most."""
    wanted = set(digests)
    if not wanted:
        return set()
    scans = list(ArtifactScan.objects.filter(blob_id__in=wanted, quarantined=True)
                 .values_list("blob_id", "artifact__version__model_id", "offending"))
    if not scans:
        return set()
    releases = {(r.model_id, r.blob_id): r for r in ArtifactRelease.objects.filter(
        blob_id__in={s[0] for s in scans}, state=ReleaseState.APPROVED)}
    return {sha for sha, model_id, offending in scans if not covers(releases.get((model_id, sha)), offending or ())}


def ensure_digest_servable(sha256: str, *, path: str = "") -> Trust:
    """Return the trust of content known by its digest, or raise Quarantined."""
    trust = digest_trust(sha256, path=path)
    if not trust.servable:
        raise _refusal(trust)
    return trust


@dataclass(frozen=True)
class _Verdict:
    """The columns of a scan that trust reads."""

    verdict: str
    quarantined: bool
    offending: list[str]
    detail: str


def versions_trust(version_ids: Iterable[int] | QuerySet) -> dict[int, VersionTrust]:
    """Return the trust of each version (by pk, or a queryset of versions) in one query, two when a file is
    quarantined: only the files that are not plainly clean come back, so the cost follows them, not the page."""
    ids = version_ids.values("pk") if isinstance(version_ids, QuerySet) else list(version_ids)
    out: dict[int, VersionTrust] = {} if isinstance(ids, QuerySet) else {pk: VersionTrust() for pk in ids}
    if not isinstance(ids, QuerySet) and not ids:
        return out
    current = FilteredRelation("scans", condition=Q(scans__blob_id=F("blob_id")))  # the verdict of this content
    rows = list(
        Artifact.objects.filter(version_id__in=ids).annotate(current=current)
        .filter(Q(current__quarantined=True) | Q(current__isnull=True, format__in=NEEDS_SCAN_FORMATS))
        .order_by("version_id", "path")
        .values_list("version_id", "version__model_id", "path", "blob_id", "format", "current__pk",
                     "current__verdict", "current__quarantined", "current__offending", "current__detail"))
    suspect = {(model_id, sha) for _, model_id, _, sha, _, scan_pk, _, quarantined, _, _ in rows if quarantined}
    releases: dict[tuple[int, str], ArtifactRelease] = {}
    if suspect:
        for release in ArtifactRelease.objects.filter(state=ReleaseState.APPROVED,
                                                      model_id__in={m for m, _ in suspect},
                                                      blob_id__in={s for _, s in suspect}):
            releases[(release.model_id, release.blob_id)] = release
    for version_id, model_id, path, sha, fmt, scan_pk, verdict, quarantined, offending, detail in rows:
        scan = None if scan_pk is None else _Verdict(verdict, bool(quarantined), offending or [], detail or "")
        trust = decide(path=path, sha256=sha, fmt=fmt, scan=scan, release=releases.get((model_id, sha)))
        out.setdefault(version_id, VersionTrust()).add(trust)
    return out


def version_trust(version: Any) -> VersionTrust:
    """Return one version's trust."""
    return versions_trust([version.pk]).get(version.pk, VersionTrust())


def ensure_version_servable(version: Any) -> VersionTrust:
    """Return the version's trust, or raise Quarantined naming the files (and globals) that hold it back."""
    trust = version_trust(version)
    if not trust.servable:
        bad = [f for f in trust.files if not f.servable]
        raise Quarantined(
            f"Version {version.number} of {version.model.name!r}: {trust.detail}",
            details={"scan_status": str(trust.state), "offending": trust.offending,
                     "files": [{"path": f.path, "sha256": f.sha256, "scan_status": str(f.state),
                                "offending": list(f.offending)} for f in bad]})
    return trust
