"""A real Celery worker on real Redis with the artifact store on a real S3 server (SeaweedFS): it scans, converts
to ONNX and signs a version whose bytes it reads from, and writes to, the object store; nothing on a shared disk."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import redis

from registry import services
from registry.artifacts.storage import blob_open
from registry.models import Artifact, Job, JobState, VersionSignature
from registry.pipeline.convert import convert_enqueue
from registry.pipeline.signing import sign_enqueue
from tests.conftest import spooled
from tests.integration.test_pipeline_worker import (
    QUEUE,
    REDIS_URL,
    _broker_down,
    _need_redis,
    _start_worker,
    _stop,
    _wait,
)
from tests.registry.pickle_corpus import benign_models
from tests.s3_support import s3_artifacts, seaweed  # noqa: F401 - fixtures

pytestmark = [pytest.mark.redis, pytest.mark.s3, pytest.mark.django_db(transaction=True)]


def test_a_worker_scans_converts_and_signs_from_the_object_store(owner, tmp_path, monkeypatch, settings,
                                                                   s3_artifacts):  # noqa: F811
    _need_redis()
    _broker_down(monkeypatch)  # jobs wait in their rows; the worker's sweeper dispatches them
    model = services.model_create(actor=owner, name="churn")
    version = services.version_create(
        model=model, actor=owner, files=[("model.pkl", spooled(pickle.dumps(benign_models()["logreg"])))])
    convert = convert_enqueue(artifact=Artifact.objects.get(version=version), actor=owner)
    prefix = settings.STORAGES["artifacts"]["OPTIONS"]["location"]
    # The worker gets an artifact folder of its own (spooling only): the bytes can only come from S3.
    worker = _start_worker(tmp_path, "s3", STRATUM_JOB_TEST_DELAY_SECONDS="0",
                           STRATUM_ARTIFACT_ROOT=str(tmp_path / "worker-local"), **s3_artifacts.env(prefix))
    try:
        done = _wait(lambda: Job.objects.filter(pk=convert.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED])
                     .first(), 180, "the conversion to finish")
        assert done.state == JobState.SUCCEEDED, done.error + (tmp_path / "s3.log").read_text()
        sign = sign_enqueue(version=version, actor=owner)
        signed = _wait(lambda: Job.objects.filter(pk=sign.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED])
                       .first(), 120, "the signing to finish")
        assert signed.state == JobState.SUCCEEDED, signed.error + (tmp_path / "s3.log").read_text()
    finally:
        _stop(worker)
        redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    onnx = Artifact.objects.get(version=version, path="model.onnx", format="onnx")
    with blob_open(onnx.blob) as fh:  # the worker wrote it to the bucket; this process reads it from there
        assert hashlib.sha256(fh.read()).hexdigest() == onnx.blob_id
    keys = {o["Key"] for o in s3_artifacts.client().list_objects_v2(Bucket="stratum-test", Prefix=prefix + "/")
            .get("Contents", [])}
    signature = VersionSignature.objects.get(version=version)
    signed_files = {p: sha for p, sha in signature.manifest.items() if not p.startswith(".stratum/")}  # + the AI-BOM
    assert signed_files == {a.path: a.blob_id for a in Artifact.objects.filter(version=version)}
    assert ".stratum/bom.cdx.json" in signature.manifest
    assert f"{prefix}/{onnx.blob.storage_name}" in keys and f"{prefix}/{signature.bundle.storage_name}" in keys
    assert not (tmp_path / "worker-local" / "blobs").exists()  # nothing of it on the worker's local disk
