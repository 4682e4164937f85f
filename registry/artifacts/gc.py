"""Garbage collection of the artifact store: delete the blobs nothing refers to once they have stayed so for a grace
period, never one whose upload is in flight, and list the files the store holds that nobody knows (left alone).

What refers to a blob: a version's file (Artifact), a run's or logged model's file (TrackedArtifact), a scan, a
signature bundle, a queued or running job naming its digest, and whatever another app declares through
`register_blob_references` (the core imports no other app; governance connects its hooks in its AppConfig.ready).
Files that are not blobs (card exports) are known through `register_known_files`.

Concurrency. An upload claims its blob's row (`storage.blob_claim`: FOR NO KEY UPDATE, held to its commit, which
also writes the reference). A collection locks its candidates FOR UPDATE SKIP LOCKED, so it passes by a claimed
blob, and then asks again, in a new statement and under its lock, whether anything refers to them: a reference
committed between its first look and its lock is seen. It deletes the file, then the row, before it commits, while
the lock holds: an upload of the same digest that waits for that lock finds the row gone, creates it again and
stores the file again. On SQLite writers take turns (IMMEDIATE transactions), so the same holds trivially.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from registry import events
from registry.artifacts.storage import artifact_storage, blob_name
from registry.errors import InvalidInput
from registry.models import (
    Artifact,
    ArtifactScan,
    Blob,
    Job,
    JobState,
    LineageNode,
    NodeKind,
    Run,
    StoreCollection,
    TrackedArtifact,
    VersionSignature,
)

BlobReferences = Callable[[set[str]], Iterable[str]]
KnownFiles = Callable[[], Iterable[str]]

_blob_reference_hooks: list[BlobReferences] = []
_known_file_hooks: list[KnownFiles] = []

# Folders of the store that hold no blobs and are not collected: uploads being spooled.
SPOOL_FOLDERS = ("tmp",)
BATCH = 500


def register_blob_references(hook: BlobReferences) -> None:
    """Install `hook(digests) -> the digests among them that something outside the registry refers to`."""
    if hook not in _blob_reference_hooks:
        _blob_reference_hooks.append(hook)


def unregister_blob_references(hook: BlobReferences) -> None:
    """Remove a hook installed by `register_blob_references` (no error if it is not installed)."""
    if hook in _blob_reference_hooks:
        _blob_reference_hooks.remove(hook)


def register_known_files(hook: KnownFiles) -> None:
    """Install `hook() -> storage names of files another app keeps in the artifact store` (never collected)."""
    if hook not in _known_file_hooks:
        _known_file_hooks.append(hook)


def unregister_known_files(hook: KnownFiles) -> None:
    """Remove a hook installed by `register_known_files` (no error if it is not installed)."""
    if hook in _known_file_hooks:
        _known_file_hooks.remove(hook)


def known_files() -> set[str]:
    """Return the storage names of the files other apps declared (`register_known_files`)."""
    declared: set[str] = set()
    for hook in _known_file_hooks:
        declared.update(hook())
    return declared


def grace_seconds() -> float:
    """How long a blob must stay unreferenced before it is deleted (STRATUM_GC_GRACE_SECONDS)."""
    return float(getattr(settings, "STRATUM_GC_GRACE_SECONDS", 86400))


def unreferenced(blobs: QuerySet[Blob]) -> QuerySet[Blob]:
    """Narrow `blobs` to those no row of the registry refers to (jobs and other apps are asked separately)."""
    return blobs.filter(
        ~Exists(Artifact.objects.filter(blob=OuterRef("pk"))),
        ~Exists(TrackedArtifact.objects.filter(blob=OuterRef("pk"))),
        ~Exists(ArtifactScan.objects.filter(blob=OuterRef("pk"))),
        ~Exists(VersionSignature.objects.filter(bundle=OuterRef("pk"))),
    )


def referenced_elsewhere(digests: set[str]) -> set[str]:
    """Return the digests among `digests` that a queued or running job, or another app's hook, refers to."""
    if not digests:
        return set()
    found: set[str] = set()
    for params in Job.objects.filter(state__in=[JobState.QUEUED, JobState.RUNNING]).values_list("params", flat=True):
        if isinstance(params, dict):
            found.update(str(v) for k, v in params.items() if k.endswith("sha256") and v in digests)
    for hook in _blob_reference_hooks:
        found.update(d for d in hook(set(digests)) if d in digests)
    from registry.pipeline.signing import signed_document_digests  # deferred: the pipeline builds on artifacts

    found.update(signed_document_digests(set(digests)))
    return found


@dataclass
class CollectionReport:
    """What a collection did (or, dry, would do)."""

    dry_run: bool
    grace_seconds: float
    deleted: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    marked: list[str] = field(default_factory=list)  # newly found unreferenced; deleted after the grace
    waiting: list[str] = field(default_factory=list)  # unreferenced, still within the grace
    in_flight: list[str] = field(default_factory=list)  # locked by an upload: passed by
    unknown_files: list[str] = field(default_factory=list)  # files of the store nobody knows: left alone
    missing_files: list[str] = field(default_factory=list)  # blob rows whose file is not in the store
    collection: StoreCollection | None = None

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "grace_seconds": self.grace_seconds,
            "blobs_deleted": len(self.deleted), "bytes_freed": self.bytes_freed,
            "deleted": [digest for digest, _ in self.deleted], "blobs_marked": len(self.marked),
            "blobs_waiting": len(self.waiting), "blobs_in_flight": len(self.in_flight),
            "unknown_files": self.unknown_files, "missing_files": self.missing_files,
        }


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def store_collect(*, actor: Any = None, dry_run: bool = False, grace: float | None = None) -> CollectionReport:
    """Delete every blob unreferenced for longer than the grace (marking the newly unreferenced ones), list unknown
    files, and record the collection (one audited event per deleting batch and one for the whole); dry, write
    nothing and report what would go."""
    grace = grace_seconds() if grace is None else float(grace)
    report = CollectionReport(dry_run=dry_run, grace_seconds=grace)
    now = timezone.now()
    cutoff = now - timedelta(seconds=grace)
    storage = artifact_storage()
    if not dry_run:
        # A blob referenced again (a version registered from a run's files) loses its mark.
        with transaction.atomic():
            marked = Blob.objects.filter(unreferenced_since__isnull=False)
            referenced = marked.exclude(pk__in=unreferenced(marked).values("pk")).select_for_update(skip_locked=True)
            Blob.objects.filter(pk__in=list(referenced.values_list("pk", flat=True))).update(unreferenced_since=None)
        report.collection = StoreCollection.objects.create(actor=actor, grace_seconds=grace)
    candidates = list(unreferenced(Blob.objects.all()).order_by("pk").values_list("pk", flat=True))
    for chunk in _chunks(candidates, BATCH):
        _collect_batch(chunk, report=report, storage=storage, now=now, cutoff=cutoff, actor=actor)
    report.unknown_files, report.missing_files = store_inventory(storage)
    if report.collection is not None:
        with transaction.atomic():
            collection = report.collection
            collection.finished_at = timezone.now()
            collection.blobs_deleted, collection.bytes_freed = len(report.deleted), report.bytes_freed
            collection.blobs_marked, collection.unknown_files = len(report.marked), report.unknown_files[:1000]
            collection.save()
            events.emit("artifact_store.collected", actor=actor, target=collection, data={
                "blobs_deleted": len(report.deleted), "bytes_freed": report.bytes_freed,
                "blobs_marked": len(report.marked), "blobs_waiting": len(report.waiting),
                "blobs_in_flight": len(report.in_flight), "unknown_files": len(report.unknown_files),
                "missing_files": len(report.missing_files), "grace_seconds": grace})
    return report


def _collect_batch(chunk: list[str], *, report: CollectionReport, storage: Storage, now: Any, cutoff: Any,
                   actor: Any) -> None:
    with transaction.atomic():
        locking = Blob.objects.filter(pk__in=chunk)
        if not report.dry_run:
            locking = locking.select_for_update(skip_locked=True)
        locked = {pk: (size, since) for pk, size, since in locking.values_list("pk", "size", "unreferenced_since")}
        report.in_flight += [pk for pk in chunk if pk not in locked]
        # Asked again, in a new statement under the lock: a reference committed since the first look is seen.
        still = set(unreferenced(Blob.objects.filter(pk__in=list(locked))).values_list("pk", flat=True))
        still -= referenced_elsewhere(still)
        doomed: list[tuple[str, int]] = []
        to_mark: list[str] = []
        for pk in sorted(still):
            size, since = locked[pk]
            if since is None:
                to_mark.append(pk)
                since = now
            if since <= cutoff:
                doomed.append((pk, size))
            else:
                report.waiting.append(pk)
        report.marked += to_mark
        if report.dry_run:
            report.deleted += doomed
            return
        if to_mark:
            Blob.objects.filter(pk__in=to_mark).update(unreferenced_since=now)
        if not doomed:
            return
        for pk, _ in doomed:  # the file first, under the lock: see the module's docstring
            storage.delete(blob_name(pk))
        Blob.objects.filter(pk__in=[pk for pk, _ in doomed]).delete()
        report.deleted += doomed
    # Audited once the batch is committed, in a transaction of its own: a batch holding blob rows FOR UPDATE never
    # waits for the audit chain (held by a writer whose deferred foreign-key check may wait for those rows).
    with transaction.atomic():
        StoreCollection.objects.filter(pk=report.collection.pk).update(
            blobs_deleted=len(report.deleted), bytes_freed=report.bytes_freed)
        events.emit("artifact_store.blobs_deleted", actor=actor, target=report.collection, data={
            "blobs": [pk for pk, _ in doomed], "bytes_freed": sum(size for _, size in doomed)})


def walk(storage: Storage, folder: str = "") -> Iterator[str]:
    """Yield the name of every file under `folder` of `storage` (Storage.listdir, so any backend)."""
    try:
        dirs, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield posixpath.join(folder, name) if folder else name
    for name in dirs:
        yield from walk(storage, posixpath.join(folder, name) if folder else name)


def store_inventory(storage: Storage | None = None) -> tuple[list[str], list[str]]:
    """Return (files of the store that are neither a blob the database knows nor a file another app declared,
    blob rows whose file is missing), spool folders aside."""
    storage = storage or artifact_storage()
    known = {blob_name(pk) for pk in Blob.objects.values_list("pk", flat=True).iterator()}
    declared = known_files()
    present: set[str] = set()
    unknown: list[str] = []
    for name in walk(storage):
        if name.split("/", 1)[0] in SPOOL_FOLDERS:
            continue
        present.add(name)
        if name not in known and name not in declared:
            unknown.append(name)
    missing = sorted(name.rsplit("/", 1)[-1] for name in known - present)
    return sorted(unknown), missing


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def dataset_files(node: LineageNode) -> QuerySet[TrackedArtifact]:
    """The files Stratum stores for a dataset node: those under its `runs:/<run id>/<path>` URI, and any logged file
    whose content is the node's SHA-256 digest."""
    match = Q(pk__in=[])
    if node.uri.startswith("runs:/"):
        run_id, _, path = node.uri[len("runs:/"):].partition("/")
        path = path.strip("/")
        under = Q(run_id=run_id)
        if path:
            under &= Q(path=path) | Q(path__startswith=f"{path}/")
        match |= under
    digest = node.digest.lower().removeprefix("sha256:")
    if SHA256_HEX.fullmatch(digest):
        match |= Q(blob_id=digest)
    return TrackedArtifact.objects.filter(match)


@transaction.atomic
def dataset_files_purge(*, node: LineageNode, actor: Any, reason: str) -> dict[str, Any]:
    """Delete the stored files of a dataset node now, without a grace period (an erasure): their run/logged-model
    entries, and the bytes of every blob nothing else refers to afterwards. A blob still referenced elsewhere (a
    version's file, another run's) is kept and named, so the caller can deal with what refers to it. Callers check
    that `actor` may erase; return the evidence (also the audited event's data)."""
    if node.kind != NodeKind.DATASET:
        raise InvalidInput("Only a dataset's stored files can be purged.")
    rows = list(dataset_files(node).select_related("run", "logged_model").order_by("pk"))
    for run_id in sorted({row.run_id for row in rows if row.run_id}):
        Run.objects.select_for_update(no_key=True).filter(pk=run_id).first()
    digests = sorted({row.blob_id for row in rows})
    sizes = dict(Blob.objects.select_for_update().filter(pk__in=digests).values_list("pk", "size"))
    files = [{"path": row.path, "run": row.run_id, "logged_model": row.logged_model_id, "sha256": row.blob_id,
              "size": row.size} for row in rows]
    TrackedArtifact.objects.filter(pk__in=[row.pk for row in rows]).delete()
    free = set(unreferenced(Blob.objects.filter(pk__in=digests)).values_list("pk", flat=True))
    free -= referenced_elsewhere(free)
    storage = artifact_storage()
    for digest in sorted(free):
        storage.delete(blob_name(digest))
    Blob.objects.filter(pk__in=free).delete()
    evidence = {
        "files": files, "blobs_deleted": sorted(free), "bytes_freed": sum(sizes.get(d, 0) for d in free),
        "blobs_kept": [{"sha256": d, "referenced_by": blob_referrers(d)} for d in digests if d not in free],
        "reason": reason[:500],
    }
    events.emit("lineage_node.files_purged", actor=actor, target=node, data=evidence)
    return evidence


def blob_referrers(digest: str) -> list[str]:
    """Name what refers to a blob (version files and logged files), for an operator to deal with."""
    names = [f"{model} v{number}: {path}" for model, number, path in Artifact.objects.filter(blob_id=digest)
             .values_list("version__model__name", "version__number", "path")[:20]]
    names += [f"run {run or '-'} / logged model {lm or '-'}: {path}" for run, lm, path in
              TrackedArtifact.objects.filter(blob_id=digest).values_list("run_id", "logged_model_id", "path")[:20]]
    return names
