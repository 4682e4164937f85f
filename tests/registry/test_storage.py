"""The content-addressed store: streamed uploads are hashed and size-limited, and each content is kept once."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from django.conf import settings

from registry import services
from registry.artifacts.storage import (
    CHUNK,
    HashingWriter,
    artifact_storage,
    blob_open,
    blob_put,
    iter_range,
    spool_dir,
    spool_stream,
)
from registry.errors import InvalidState, UploadTooLarge
from registry.models import Artifact, Blob
from tests.conftest import spooled

pytestmark = pytest.mark.django_db


def spool_files() -> list[str]:
    return os.listdir(spool_dir())


def blob_files() -> list[Path]:
    root = Path(settings.ARTIFACT_ROOT) / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


class _Chunks(io.RawIOBase):
    """A stream that yields fixed-size chunks, then optionally fails."""

    def __init__(self, chunks: list[bytes], fail_after: bool = False) -> None:
        self.chunks = list(chunks)
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.chunks:
            return self.chunks.pop(0)
        if self.fail_after:
            raise ConnectionResetError("client went away")
        return b""


# --------------------------------------------------------------------------------------------- spooling


def test_spool_hashes_sizes_and_sniffs():
    data = b'{"threshold": 0.5}'
    upload = spool_stream(io.BytesIO(data))
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.size == len(data)
    assert upload.format == "json"
    assert Path(upload.path).read_bytes() == data
    assert os.path.dirname(upload.path) == spool_dir()
    upload.discard()
    assert spool_files() == []
    upload.discard()  # idempotent


def test_spool_multi_chunk_hash_matches_hashlib():
    data = os.urandom(CHUNK * 2 + 12345)
    upload = spool_stream(io.BytesIO(data))
    assert (upload.sha256, upload.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert Path(upload.path).read_bytes() == data
    upload.discard()


def test_spool_over_limit_raises_and_leaves_no_file():
    with pytest.raises(UploadTooLarge, match="100 bytes"):
        spool_stream(io.BytesIO(b"x" * 101), max_bytes=100)
    assert spool_files() == []


def test_spool_at_limit_is_accepted():
    upload = spool_stream(io.BytesIO(b"x" * 100), max_bytes=100)
    assert upload.size == 100
    upload.discard()


def test_spool_over_limit_across_chunks_leaves_no_file():
    with pytest.raises(UploadTooLarge):
        spool_stream(_Chunks([b"a" * 60, b"b" * 60]), max_bytes=100)
    assert spool_files() == []


def test_spool_uses_configured_limit_by_default(settings):
    settings.MAX_UPLOAD_BYTES = 10
    with pytest.raises(UploadTooLarge):
        spool_stream(io.BytesIO(b"x" * 11))
    assert spool_files() == []
    spool_stream(io.BytesIO(b"x" * 10)).discard()


def test_spool_interrupted_stream_leaves_no_file():
    with pytest.raises(ConnectionResetError):
        spool_stream(_Chunks([b"partial"], fail_after=True))
    assert spool_files() == []


def test_hashing_writer_over_limit_aborts():
    writer = HashingWriter(max_bytes=5)
    writer.write(b"abc")
    assert os.path.exists(writer.path)
    with pytest.raises(UploadTooLarge):
        writer.write(b"def")
    assert not os.path.exists(writer.path)
    assert spool_files() == []


# ------------------------------------------------------------------------------------------------ blobs


def test_blob_put_stores_content_addressed_and_consumes_spool():
    data = b"model weights"
    upload = spooled(data)
    blob = blob_put(upload)
    digest = hashlib.sha256(data).hexdigest()
    assert (blob.sha256, blob.size) == (digest, len(data))
    assert blob.storage_name == f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"
    assert artifact_storage().exists(blob.storage_name)
    with blob_open(blob) as fh:
        assert fh.read() == data
    assert spool_files() == []


def test_same_content_twice_is_one_blob_row_and_one_file():
    data = b"\x80\x04same bytes"
    first = blob_put(spooled(data))
    second = blob_put(spooled(data))
    assert first.pk == second.pk == hashlib.sha256(data).hexdigest()
    assert Blob.objects.count() == 1
    assert [p.name for p in blob_files()] == [first.pk]
    assert blob_files()[0].read_bytes() == data
    assert spool_files() == []


def test_different_content_gets_different_blobs():
    a, b = blob_put(spooled(b"a")), blob_put(spooled(b"b"))
    assert a.pk != b.pk
    assert Blob.objects.count() == 2
    assert len(blob_files()) == 2


def test_blob_row_without_file_is_repaired():
    data = b"lost on disk"
    blob = blob_put(spooled(data))
    artifact_storage().delete(blob.storage_name)
    again = blob_put(spooled(data))
    assert again.pk == blob.pk
    with blob_open(again) as fh:
        assert fh.read() == data


def test_file_without_blob_row_is_adopted():
    data = b"orphaned file from a rolled-back upload"
    blob = blob_put(spooled(data))
    Blob.objects.filter(pk=blob.pk).delete()
    again = blob_put(spooled(data))
    assert Blob.objects.filter(pk=blob.pk, size=len(data)).exists()
    assert again.pk == blob.pk
    assert len(blob_files()) == 1


def test_versions_sharing_content_share_one_blob(registered_model, make_version):
    data = b"\x80\x05shared model"
    v1 = make_version(registered_model, files={"model.pkl": data})
    v2 = make_version(registered_model, files={"copy/model.bin": data})
    artifacts = Artifact.objects.filter(version__in=[v1, v2])
    assert artifacts.count() == 2
    assert {a.blob_id for a in artifacts} == {hashlib.sha256(data).hexdigest()}
    assert Blob.objects.count() == 1
    assert len(blob_files()) == 1
    assert spool_files() == []


def test_artifact_add_to_production_version_refused_and_spool_discarded(registered_model, owner, make_version):
    version = make_version(registered_model)
    services.version_transition_stage(version=version, actor=owner, stage="Production")
    with pytest.raises(InvalidState):
        services.artifact_add(version=version, actor=owner, path="late.bin", upload=spooled(b"late"))
    assert spool_files() == []
    assert not Blob.objects.exists()
    assert not Artifact.objects.exists()


def test_artifact_add_replace_and_event(registered_model, owner, make_version, captured_events):
    version = make_version(registered_model, files={"model.pkl": b"old"})
    services.artifact_add(version=version, actor=owner, path="model.pkl", upload=spooled(b"new"))
    artifact = Artifact.objects.get(version=version, path="model.pkl")
    assert artifact.blob_id == hashlib.sha256(b"new").hexdigest()
    event = [e for e in captured_events if e.action == "model_version.artifact_added"][-1]
    assert event.data["replaced"] == hashlib.sha256(b"old").hexdigest()
    assert event.data["sha256"] == artifact.blob_id
    # The old blob stays: blobs may be shared.
    assert Blob.objects.filter(pk=hashlib.sha256(b"old").hexdigest()).exists()


def test_forbidden_upload_discards_spool(registered_model, outsider):
    from registry.errors import NotFound

    with pytest.raises(NotFound):
        services.version_create(model=registered_model, actor=outsider, files=[("m.bin", spooled(b"x"))])
    assert spool_files() == []
    assert not Blob.objects.exists()
    assert blob_files() == []


def test_iter_range_yields_exact_slice():
    blob = blob_put(spooled(bytes(range(256)) * 10))
    chunks = list(iter_range(blob_open(blob), 100, 1000, chunk=64))
    assert b"".join(chunks) == (bytes(range(256)) * 10)[100:1100]
    assert max(len(c) for c in chunks) <= 64
