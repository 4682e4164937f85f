"""A full disk and the leftovers of failures: 507 in each API's error shape with nothing half-written, conversions
that fail remove what they spooled, and a periodic sweep removes what killed processes left behind."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from registry.artifacts.storage import HashingWriter, spool_dir, temp_sweep, work_dir
from registry.models import Artifact, Blob, Job, JobState, ModelVersion, Stage
from tests.registry.pickle_corpus import benign_models

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow"
TOO_BIG = 3 * 1024 * 1024  # the small disk holds 2 MiB


def _mount_small_disk(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a 2 MiB tmpfs, and mounting one needs root")
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disk(settings, tmp_path):
    """The artifact root (store and spool) on a real 2 MiB filesystem."""
    root = tmp_path / "small"
    _mount_small_disk(root)
    settings.ARTIFACT_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    yield root
    _unmount(root)


@pytest.fixture
def small_store(settings, tmp_path):
    """The store on a real 2 MiB filesystem, the spool on another disk: a blob is copied in, not moved."""
    store = tmp_path / "store"
    _mount_small_disk(store)
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(store)}}}
    yield store
    _unmount(store)


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _native_507(response) -> None:
    assert response.status_code == 507, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert "out of space" in body["error"]["message"]


def test_full_disk_is_507_for_raw_and_multipart_uploads_with_nothing_kept(api, registered_model, make_version,
                                                                          small_disk):
    make_version(registered_model, files={"small.bin": b"s" * 1000})
    before = _files(small_disk)
    response = api.generic("PUT", "/api/v1/models/churn/versions/1/artifacts/big.bin", b"b" * TOO_BIG,
                           content_type="application/octet-stream")
    _native_507(response)
    response = api.post("/api/v1/models/churn/versions", {"file": [_upload("big.bin", b"m" * TOO_BIG)]},
                        format="multipart")
    _native_507(response)
    assert ModelVersion.objects.count() == 1 and not Artifact.objects.filter(path="big.bin").exists()
    assert Blob.objects.count() == 1
    assert _files(small_disk) == before  # no spool file, no partial blob
    # Space is back once the failed uploads are gone: a later small upload works.
    response = api.generic("PUT", "/api/v1/models/churn/versions/1/artifacts/later.bin", b"l" * 100_000,
                           content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    assert os.listdir(small_disk / "tmp") == []


def test_full_disk_is_507_in_mlflows_shape_for_an_artifact_upload(api, small_disk):
    exp_id = _call(api, "post", f"{MLFLOW}/experiments/create", {"name": "exp"}).json()["experiment_id"]
    run_id = _call(api, "post", f"{MLFLOW}/runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    url = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/model.bin"
    response = api.generic("PUT", url, b"b" * TOO_BIG, content_type="application/octet-stream")
    assert response.status_code == 507, response.content
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == "RESOURCE_EXHAUSTED"
    assert _files(small_disk) == []
    assert api.generic("PUT", url, b"x" * 1000, content_type="application/octet-stream").status_code == 200
    assert Blob.objects.count() == 1


def test_a_full_store_leaves_no_partial_blob(api, registered_model, make_version, small_store, settings):
    make_version(registered_model, files={"small.bin": b"s" * 1000})
    response = api.generic("PUT", "/api/v1/models/churn/versions/1/artifacts/big.bin", b"b" * TOO_BIG,
                           content_type="application/octet-stream")
    _native_507(response)
    assert _files(small_store) == [str(Path(Blob.objects.get().storage_name))]  # only the first file's blob
    assert os.listdir(spool_dir()) == []


def test_a_conversion_that_fails_while_storing_leaves_no_spool_and_no_scratch_folder(
        registered_model, make_version, owner, monkeypatch, tmp_path, django_capture_on_commit_callbacks):
    from registry.pipeline import convert, jobs

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # this test's own temporary folder
    with django_capture_on_commit_callbacks(execute=True):
        version = make_version(registered_model, files={"m.pkl": pickle.dumps(benign_models()["logreg"])})
    # The version reaches production before the queued conversion stores its result: storing is refused.
    ModelVersion.objects.filter(pk=version.pk).update(stage=Stage.PRODUCTION)
    job = convert.convert_enqueue(artifact=Artifact.objects.get(version=version), actor=owner)
    done = jobs.job_run(job.pk)
    assert done.state == JobState.FAILED and "can no longer change" in done.error
    assert os.listdir(spool_dir()) == []  # neither the ONNX file nor its parity report
    assert os.listdir(scratch) == []
    assert not Artifact.objects.filter(path__endswith=".onnx").exists()
    assert not Job.objects.filter(kind="convert", state=JobState.SUCCEEDED).exists()


def test_the_sweep_removes_stale_spool_files_and_scratch_folders_and_nothing_in_use(settings, tmp_path,
                                                                                    monkeypatch):
    from registry import tasks

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    settings.STRATUM_TEMP_MAX_AGE_SECONDS = 3600
    old = time.time() - 2 * 3600
    stale_spool = HashingWriter()
    stale_spool.write(b"left by a killed upload")
    stale_spool.file.close()
    os.utime(stale_spool.path, (old, old))
    with work_dir("convert") as stale_dir, work_dir("convert") as busy_dir:
        Path(stale_dir, "model.onnx").write_bytes(b"x")
        os.utime(Path(stale_dir, "model.onnx"), (old, old))
        os.utime(stale_dir, (old, old))
        os.utime(busy_dir, (old, old))
        Path(busy_dir, "sample.npy").write_bytes(b"x")  # a conversion still writing here
        other = scratch / "not-ours"
        other.mkdir()
        os.utime(other, (old, old))
        in_use = HashingWriter()
        in_use.write(b"still arriving")
        assert tasks.temp_sweep.apply().get() == 2
        assert not os.path.exists(stale_spool.path) and not os.path.exists(stale_dir)
        assert os.path.exists(busy_dir) and other.exists() and os.path.exists(in_use.path)
        in_use.write(b" and whole")
        assert Path(in_use.finish().path).read_bytes() == b"still arriving and whole"
        os.unlink(in_use.path)
    assert temp_sweep(older_than=0) == []


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def _call(client, method: str, url: str, body=None):
    return getattr(client, method)(url, data=None if body is None else json.dumps(body),
                                   content_type="application/json")
