"""Blob garbage collection: only unreferenced blobs past the grace go, never one being uploaded; unknown files stay."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from registry import services
from registry.artifacts import gc
from registry.artifacts.storage import artifact_storage, blob_name
from registry.models import Artifact, Blob, Job, JobState, StoreCollection
from tests.conftest import need_service, spooled


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _orphan(make_version, model, data: bytes):
    """A blob left behind by a deleted version."""
    version = make_version(model, files={"model.txt": data})
    services.version_delete(version=version, actor=model.owner)
    return Blob.objects.get(pk=_digest(data))


def _age(blob: Blob, seconds: float) -> None:
    Blob.objects.filter(pk=blob.pk).update(unreferenced_since=timezone.now() - timedelta(seconds=seconds))


def test_unreferenced_blob_is_marked_then_deleted_after_the_grace(registered_model, make_version, captured_events):
    data = b"weights no longer wanted\n" * 40
    blob = _orphan(make_version, registered_model, data)
    kept = make_version(registered_model, files={"model.txt": b"still wanted"})
    storage = artifact_storage()

    first = gc.store_collect(grace=3600)
    assert first.marked == [blob.pk] and first.deleted == []
    assert storage.exists(blob_name(blob.pk))
    assert Blob.objects.get(pk=blob.pk).unreferenced_since is not None

    _age(blob, 7200)
    second = gc.store_collect(grace=3600)
    assert second.deleted == [(blob.pk, len(data))] and second.bytes_freed == len(data)
    assert not storage.exists(blob_name(blob.pk))
    assert not Blob.objects.filter(pk=blob.pk).exists()
    survivor = Artifact.objects.get(version=kept).blob
    assert storage.exists(survivor.storage_name)

    collection = StoreCollection.objects.get(pk=second.collection.pk)
    assert (collection.blobs_deleted, collection.bytes_freed) == (1, len(data))
    deleted = [e for e in captured_events if e.action == "artifact_store.blobs_deleted"]
    assert deleted[-1].data == {"blobs": [blob.pk], "bytes_freed": len(data)}
    done = [e for e in captured_events if e.action == "artifact_store.collected"][-1]
    assert done.data["blobs_deleted"] == 1 and done.data["bytes_freed"] == len(data)


def test_referenced_blobs_survive_a_zero_grace(registered_model, make_version, owner):
    from registry.tracking import runs
    from registry.tracking.artifacts import ArtifactRoot, artifact_put
    from registry.tracking.experiments import default_experiment

    version = make_version(registered_model, files={"model.txt": b"a version's file"})
    run = runs.run_create(actor=owner, experiment=default_experiment(), run_name="r")
    tracked = artifact_put(actor=owner, root=ArtifactRoot(run=run, rel="data/train.csv"),
                           upload=spooled(b"a run's file"))
    queued = _orphan(make_version, registered_model, b"named by a queued job")
    Job.objects.create(kind="convert", key="k1", state=JobState.QUEUED, params={"sha256": queued.pk})

    report = gc.store_collect(grace=0)
    assert report.deleted == []
    assert Artifact.objects.get(version=version).blob_id in set(Blob.objects.values_list("pk", flat=True))
    assert Blob.objects.filter(pk=queued.pk).exists()
    assert Blob.objects.filter(pk=tracked.blob_id).exists()

    Job.objects.filter(key="k1").update(state=JobState.SUCCEEDED)
    assert [d for d, _ in gc.store_collect(grace=0).deleted] == [queued.pk]


def test_dry_run_changes_nothing(registered_model, make_version, captured_events):
    blob = _orphan(make_version, registered_model, b"orphan for the dry run")
    before = StoreCollection.objects.count()
    report = gc.store_collect(grace=0, dry_run=True)
    assert [d for d, _ in report.deleted] == [blob.pk]
    fresh = Blob.objects.get(pk=blob.pk)
    assert fresh.unreferenced_since is None
    assert artifact_storage().exists(blob.storage_name)
    assert StoreCollection.objects.count() == before
    assert not [e for e in captured_events if e.action.startswith("artifact_store.")]


def test_unknown_files_are_listed_and_left_alone(registered_model, make_version, owner):
    storage = artifact_storage()
    stray = storage.save("blobs/ab/cd/" + "ab" * 32, ContentFile(b"a blob the database never recorded"))
    other = storage.save("someone-else/notes.txt", ContentFile(b"not ours"))
    from governance.models import CardExportJob

    export = storage.save("exports/cards/1-churn.pdf", ContentFile(b"%PDF-1.7 exported card"))
    CardExportJob.objects.create(model=registered_model, requested_by=owner, state="done", file_name=export)
    _orphan(make_version, registered_model, b"collected")

    report = gc.store_collect(grace=0)
    assert report.unknown_files == sorted([stray, other])
    assert len(report.deleted) == 1
    for name in (stray, other, export):
        assert storage.exists(name)
    assert StoreCollection.objects.get(pk=report.collection.pk).unknown_files == sorted([stray, other])

    out = io.StringIO()
    call_command("gc_artifacts", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Would delete 0 blob(s)" in text and stray in text and other in text and export not in text


def test_an_upload_of_the_same_content_unmarks_and_restores(registered_model, make_version):
    data = b"content that comes back"
    blob = _orphan(make_version, registered_model, data)
    gc.store_collect(grace=3600)
    assert Blob.objects.get(pk=blob.pk).unreferenced_since is not None
    again = make_version(registered_model, files={"again.txt": data})
    assert Blob.objects.get(pk=blob.pk).unreferenced_since is None
    _age(blob, 7200)  # even an old mark, had it survived, is gone: nothing is deleted
    assert gc.store_collect(grace=3600).deleted == []

    services.version_delete(version=again, actor=registered_model.owner)
    gc.store_collect(grace=0)
    assert not Blob.objects.filter(pk=blob.pk).exists()
    restored = make_version(registered_model, files={"third.txt": data})
    stored = Artifact.objects.get(version=restored).blob
    with artifact_storage().open(stored.storage_name, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == blob.pk


def test_gc_command_reports_counts_and_bytes(registered_model, make_version):
    data = b"x" * 1234
    _orphan(make_version, registered_model, data)
    out = io.StringIO()
    call_command("gc_artifacts", "--grace", "0", stdout=out)
    assert "Deleted 1 blob(s), 1234 byte(s) freed" in out.getvalue()
    for bad in ("-1", "nan"):
        with pytest.raises(CommandError, match="zero or more"):
            call_command("gc_artifacts", "--grace", bad)


# Concurrency: an upload of a digest that collection is about to delete. PostgreSQL only: on SQLite writers take
# turns (IMMEDIATE transactions), so the two can never interleave inside their transactions.

def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "the race needs concurrent writers (DATABASE_URL at PostgreSQL; CI sets it)")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_collection_passes_by_a_blob_whose_upload_is_in_flight(registered_model, make_version):
    _postgres_only()
    data = b"uploaded while collected " * 100
    blob = _orphan(make_version, registered_model, data)
    _age(blob, 10 ** 6)
    target = make_version(registered_model)
    claimed, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            with transaction.atomic():
                services.artifact_add(version=target, actor=registered_model.owner, path="model.txt",
                                      upload=spooled(data))
                claimed.set()
                release.wait(30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            claimed.set()
            connections.close_all()

    def release_before_auditing() -> list[str]:
        """Called after the batches, before the collection's audit event (which queues behind the upload's)."""
        release.set()
        return []

    worker = threading.Thread(target=upload)
    worker.start()
    assert claimed.wait(30)
    gc.register_known_files(release_before_auditing)
    try:
        report = gc.store_collect(grace=0)
    finally:
        gc.unregister_known_files(release_before_auditing)
        release.set()
    worker.join(30)
    assert errors == []
    assert report.in_flight == [blob.pk] and report.deleted == []
    stored = Artifact.objects.get(version=target, path="model.txt").blob
    with artifact_storage().open(stored.storage_name, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == blob.pk
    assert gc.store_collect(grace=0).deleted == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_upload_waiting_for_the_collection_stores_the_file_again(registered_model, make_version):
    _postgres_only()
    data = b"deleted under the uploader's feet " * 100
    blob = _orphan(make_version, registered_model, data)
    _age(blob, 10 ** 6)
    target = make_version(registered_model)
    in_recheck, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold(digests: set[str]) -> set[str]:
        """A reference hook that holds the collection inside its locked re-check until the upload waits."""
        if blob.pk in digests:
            in_recheck.set()
            release.wait(30)
        return set()

    def upload() -> None:
        try:
            services.artifact_add(version=target, actor=registered_model.owner, path="model.txt",
                                  upload=spooled(data))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def collect() -> None:
        try:
            result.append(gc.store_collect(grace=0))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    result: list[gc.CollectionReport] = []
    gc.register_blob_references(hold)
    try:
        collector = threading.Thread(target=collect)
        collector.start()
        assert in_recheck.wait(30)
        uploader = threading.Thread(target=upload)
        uploader.start()
        uploader.join(1.5)
        assert uploader.is_alive(), "the upload should wait for the collection's lock on the blob"
        release.set()
        collector.join(30)
        uploader.join(30)
    finally:
        gc.unregister_blob_references(hold)
    assert errors == []
    assert result[0].deleted == [(blob.pk, len(data))]
    stored = Artifact.objects.get(version=target, path="model.txt").blob
    with artifact_storage().open(stored.storage_name, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == blob.pk
