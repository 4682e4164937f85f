"""The artifact store on a real S3 server (SeaweedFS): content addressing and dedupe, multipart uploads with flat
memory, streamed and ranged reads, presigned direct downloads, and a store stopped in the middle of an upload."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest
import requests

from registry.artifacts.storage import blob_open, blob_put, spool_dir, spool_stream
from registry.models import Artifact, Blob
from tests.conftest import spooled
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture
from tests.s3_support import BUCKET, SeaweedS3, s3_artifacts, seaweed, start_seaweed  # noqa: F401 - fixtures

pytestmark = [pytest.mark.s3, pytest.mark.django_db]

MIB = 1024 * 1024
FILES = "/api/v1/models/churn/versions/1/artifacts"


class _Pattern(io.RawIOBase):
    """`size` bytes of a repeating non-trivial pattern, produced as they are read (never whole in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = hashlib.sha256(b"seed").digest() * (MIB // 32)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


def _keys(server: SeaweedS3, prefix: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return [o["Key"] for o in listing.get("Contents", [])]


def _prefix(settings) -> str:
    return settings.STORAGES["artifacts"]["OPTIONS"]["location"]


def test_same_content_twice_is_one_blob_and_one_object_under_its_hash(s3_artifacts, settings):  # noqa: F811
    first = blob_put(spooled(b"weights-1"))
    second = blob_put(spooled(b"weights-1"))
    other = blob_put(spooled(b"weights-2"))
    assert first.pk == second.pk == hashlib.sha256(b"weights-1").hexdigest() and other.pk != first.pk
    assert Blob.objects.count() == 2
    prefix = _prefix(settings)
    assert sorted(_keys(s3_artifacts, prefix)) == sorted(f"{prefix}/{b.storage_name}" for b in (first, other))
    assert os.listdir(spool_dir()) == []  # each spool file was consumed
    with blob_open(first) as fh:
        assert fh.read() == b"weights-1"


def test_a_large_upload_goes_up_in_parts_and_streams_back_with_flat_memory(s3_artifacts, settings):  # noqa: F811
    size = 96 * MIB
    upload = spool_stream(_Pattern(size))
    tracemalloc.start()
    try:
        blob = blob_put(upload)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        digest = hashlib.sha256()
        with blob_open(blob) as fh:
            for chunk in iter(lambda: fh.read(MIB), b""):
                digest.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
        download_peak -= base
    finally:
        tracemalloc.stop()
    head = s3_artifacts.client().head_object(Bucket=BUCKET, Key=f"{_prefix(settings)}/{blob.storage_name}")
    assert head["ContentLength"] == size and head["ETag"].strip('"').endswith("-12")  # 12 parts of 8 MiB
    assert digest.hexdigest() == blob.sha256
    print(f"96 MiB through S3: upload peak {upload_peak / MIB:.1f} MiB, download peak {download_peak / MIB:.1f} MiB")
    assert upload_peak < 40 * MIB  # parts are read from the spool file as they are sent, never the file whole
    assert download_peak < 16 * MIB  # read as it arrives, never downloaded whole first


def test_api_multipart_upload_and_range_reads(s3_artifacts, registered_model, owner, make_version, api_client_for):  # noqa: F811
    make_version(registered_model)
    api = api_client_for(owner)
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: one multipart part past the threshold
    response = api.post(FILES, {"file": io.BytesIO(data), "path": "weights/model.bin"}, format="multipart")
    assert response.status_code == 201, response.content
    sha = hashlib.sha256(data).hexdigest()
    assert Artifact.objects.get(path="weights/model.bin").blob_id == sha

    full = api.get(f"{FILES}/weights/model.bin")
    assert full.status_code == 200 and full["ETag"] == f'"{sha}"'
    assert b"".join(full.streaming_content) == data
    middle = api.get(f"{FILES}/weights/model.bin", HTTP_RANGE="bytes=9000000-9000099")
    assert middle.status_code == 206 and middle["Content-Range"] == f"bytes 9000000-9000099/{len(data)}"
    assert b"".join(middle.streaming_content) == data[9000000:9000100]
    tail = api.get(f"{FILES}/weights/model.bin", HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-10:]
    beyond = api.get(f"{FILES}/weights/model.bin", HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416 and beyond.json()["error"]["code"] == "INVALID_RANGE"


def test_direct_downloads_redirect_to_a_short_lived_presigned_url_after_the_permission_check(
        s3_artifacts, settings, registered_model, owner, outsider, make_version, api_client_for):  # noqa: F811
    import time

    make_version(registered_model, files={"model.onnx": b"\x08\x07" + b"onnx-ish" * 100})
    settings.STRATUM_DIRECT_DOWNLOADS = True
    settings.STRATUM_DIRECT_DOWNLOAD_SECONDS = 2
    # An outsider learns nothing, and gets no URL.
    refused = api_client_for(outsider).get(f"{FILES}/model.onnx")
    assert refused.status_code == 404 and "Location" not in refused
    response = api_client_for(owner).get(f"{FILES}/model.onnx")
    assert response.status_code == 302 and response["Cache-Control"] == "no-store"
    url = response["Location"]
    assert url.startswith(s3_artifacts.endpoint) and "X-Amz-Signature=" in url and "X-Amz-Expires=2" in url
    fetched = requests.get(url, timeout=10)  # no Stratum credentials: the signature is the permission
    assert fetched.status_code == 200 and fetched.content == b"\x08\x07" + b"onnx-ish" * 100
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="model.onnx"')
    ranged = requests.get(url, headers={"Range": "bytes=2-9"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == b"onnx-ish"
    time.sleep(3)
    assert requests.get(url, timeout=10).status_code == 403  # expired
    # Off (the default), the bytes stream through Stratum.
    settings.STRATUM_DIRECT_DOWNLOADS = False
    proxied = api_client_for(owner).get(f"{FILES}/model.onnx")
    assert proxied.status_code == 200 and b"".join(proxied.streaming_content).startswith(b"\x08\x07onnx-ish")


def test_direct_downloads_on_local_disk_stay_proxied(settings, registered_model, owner, make_version, api_client_for):
    make_version(registered_model, files={"model.onnx": b"local bytes"})
    settings.STRATUM_DIRECT_DOWNLOADS = True  # nothing can presign a local file: stream it
    response = api_client_for(owner).get(f"{FILES}/model.onnx")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"local bytes"


@pytest.mark.django_db(transaction=True)
def test_a_store_stopped_during_an_upload_is_503_with_nothing_kept_and_a_restart_needs_no_step(
        tmp_path, settings, registered_model, owner, make_version, api_client_for):
    from django.core.files.storage import storages

    server = start_seaweed(tmp_path / "store")  # its own server: this test stops it
    try:
        settings.STORAGES = {**settings.STORAGES, "artifacts": {"BACKEND": "storages.backends.s3.S3Storage",
                                                               "OPTIONS": server.storage_options()}}
        make_version(registered_model)
        client = storages["artifacts"].connection.meta.client
        stopped = []

        def stop_the_store(**kwargs):  # the store goes away once the upload's first part is on the wire
            if not stopped:
                stopped.append(True)
                server.stop()

        client.meta.events.register("before-send.s3.UploadPart", stop_the_store)
        api = api_client_for(owner)
        small = api.put(f"{FILES}/small.bin", data=b"kept before the outage", content_type="application/octet-stream")
        assert small.status_code == 201
        blobs_before = set(Blob.objects.values_list("pk", flat=True))
        data = os.urandom(20 * MIB)
        response = api.put(f"{FILES}/big.bin", data=data, content_type="application/octet-stream")
        assert stopped and response.status_code == 503, response.content
        body = response.json()
        assert body["error"]["code"] == "STORAGE_UNAVAILABLE" and "nothing of this upload was kept" in \
            body["error"]["message"] and response["Retry-After"]
        # The MLflow artifact route answers in MLflow's shape.
        experiment = api.post("/api/2.0/mlflow/experiments/create", {"name": "outage"}, format="json").json()
        run = api.post("/api/2.0/mlflow/runs/create", {"experiment_id": experiment["experiment_id"]},
                       format="json").json()["run"]["info"]
        mlflow = api.put(f"/api/2.0/mlflow-artifacts/artifacts/{experiment['experiment_id']}/{run['run_id']}"
                         "/artifacts/x.bin", data=b"x" * 100, content_type="application/octet-stream")
        assert mlflow.status_code == 503 and mlflow.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", mlflow.content
        assert set(Blob.objects.values_list("pk", flat=True)) == blobs_before
        assert not Artifact.objects.filter(path="big.bin").exists()
        assert os.listdir(spool_dir()) == []  # the spool is removed
        # A download while the store is down is a 503 before any byte is sent, not a broken stream.
        down = api.get(f"{FILES}/small.bin")
        assert down.status_code == 503 and down.json()["error"]["code"] == "STORAGE_UNAVAILABLE"

        client.meta.events.unregister("before-send.s3.UploadPart", stop_the_store)
        server.start()  # the same store comes back; Stratum needs no step to use it again
        prefix = settings.STORAGES["artifacts"]["OPTIONS"]["location"]
        small_blob = Artifact.objects.get(path="small.bin").blob
        assert _keys(server, prefix) == [f"{prefix}/{small_blob.storage_name}"]  # nothing half-written is visible
        assert requests.get(f"{server.endpoint}/healthz", timeout=5).status_code == 200  # docker-compose's check
        again = api.put(f"{FILES}/big.bin", data=data, content_type="application/octet-stream")
        assert again.status_code == 201, again.content
        with blob_open(Artifact.objects.get(path="big.bin").blob) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_stock_mlflow_client_logs_and_loads_a_model_on_s3_proxied_and_direct(
        s3_artifacts, settings, mlflow_env, owner, live_server):  # noqa: F811
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    estimator = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    mlflow_env(owner)
    mlflow.set_experiment("s3-training")
    with mlflow.start_run():
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name="churn-s3",
                                 pip_requirements=["scikit-learn"])
    version = Artifact.objects.filter(version__model__name="churn-s3")
    prefix = _prefix(settings)
    stored = set(_keys(s3_artifacts, prefix))
    assert version.count() >= 3 and {f"{prefix}/{a.blob.storage_name}" for a in version} <= stored
    expected = list(estimator.predict(X))
    assert list(mlflow.pyfunc.load_model("models:/churn-s3/1").predict(X)) == expected  # proxied

    settings.STRATUM_DIRECT_DOWNLOADS = True  # the client follows each 302 to the object store
    assert list(mlflow.pyfunc.load_model("models:/churn-s3/1").predict(X)) == expected
    uri = mlflow.MlflowClient().get_model_version_download_uri("churn-s3", "1")
    route = f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/{uri.split(':/', 1)[1].lstrip('/')}/MLmodel"
    headers = {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    answer = requests.get(route, headers=headers, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(s3_artifacts.endpoint)
    followed = requests.get(route, headers=headers, timeout=10)  # as the client does; requests drops the token
    assert followed.history and followed.content == b"".join(
        blob_open(version.get(path="MLmodel").blob))


def test_no_presigned_url_is_issued_for_quarantined_or_unscanned_bytes(
        s3_artifacts, settings, registered_model, owner, make_version, api_client_for):  # noqa: F811
    from registry.pipeline import handlers  # noqa: F401 - installs the job handlers
    from registry.pipeline.jobs import job_run
    from registry.pipeline.scan.services import scan_enqueue
    from tests.registry.pickle_corpus import MALICIOUS

    version = make_version(registered_model, files={"model.pkl": MALICIOUS["os.system"][0]})
    settings.STRATUM_DIRECT_DOWNLOADS = True
    api = api_client_for(owner)
    pending = api.get(f"{FILES}/model.pkl")  # a pickle not scanned yet: no bytes, and no URL to them
    assert pending.status_code == 409 and "Location" not in pending
    for artifact in version.artifacts.all():
        job_run(scan_enqueue(artifact).pk)
    quarantined = api.get(f"{FILES}/model.pkl")
    assert quarantined.status_code == 409 and "Location" not in quarantined
    assert quarantined.json()["error"]["code"] == "QUARANTINED"
