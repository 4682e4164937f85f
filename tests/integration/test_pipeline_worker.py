"""A real Celery worker on real Redis: queued with the broker unreachable, swept, killed -9 mid-job, finished once."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from registry import services, tasks
from registry.models import ArtifactScan, Blob, Job, JobState
from tests.conftest import need_service, spooled

REDIS_URL = os.environ.get("STRATUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"stratum-test-{uuid.uuid4().hex[:12]}"  # a queue of our own: parallel runs never take our messages

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _start_worker(tmp_path: Path, name: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({
        "DATABASE_URL": _database_url(), "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "stratum.settings",
        "STRATUM_ARTIFACT_ROOT": str(django_settings.ARTIFACT_ROOT), "STRATUM_JOB_TEST_DELAY_SECONDS": "4",
        "STRATUM_JOB_STALE_SECONDS": "2", "STRATUM_JOB_SWEEP_SECONDS": "1", "STRATUM_CELERY_QUEUE": QUEUE,
    })
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stratum", "worker", "-B", "-s", str(tmp_path / f"{name}-beat"),
         "-l", "warning", "-c", "1", "-n", f"{name}-{QUEUE}@%h", "-Q", QUEUE, "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(owner, tmp_path, monkeypatch):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{REDIS_URL} did not answer ({exc.__class__.__name__})")

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable while the upload commits")

    # This test process has no broker (tasks would run in-process): make dispatch fail so the row is all there is.
    monkeypatch.setattr(tasks.job_execute, "apply_async", broker_down)
    model = services.model_create(actor=owner, name="churn")
    version = services.version_create(model=model, actor=owner,
                                      files=[("model.pkl", spooled(pickle.dumps({"weights": [1.0, 2.0]})))])
    job = Job.objects.get(version=version)
    assert job.state == JobState.QUEUED and job.dispatched_at is None
    blobs_before = set(Blob.objects.values_list("sha256", flat=True))

    first = _start_worker(tmp_path, "first")
    try:
        _wait(lambda: Job.objects.filter(pk=job.pk, state=JobState.RUNNING, progress__gt=0).exists(), 60,
              "the sweeper to dispatch the job and the first worker to start it")
        os.killpg(first.pid, signal.SIGKILL)  # kill -9 the worker (and its pool child) mid-job
        first.wait(timeout=10)
    finally:
        _stop(first, signal.SIGKILL)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.attempts == 1
    assert not ArtifactScan.objects.exists()

    second = _start_worker(tmp_path, "second")
    try:
        done = _wait(lambda: Job.objects.filter(pk=job.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED]).first(),
                     90, "the second worker to take over the abandoned job")
        time.sleep(2)  # let any duplicate delivery arrive: it must find the job finished and do nothing
    finally:
        _stop(second)
        redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    assert done.state == JobState.SUCCEEDED, (tmp_path / "second.log").read_text()
    done.refresh_from_db()
    assert done.attempts == 2 and done.progress == 100
    assert ArtifactScan.objects.filter(artifact__version=version).count() == 1
    assert ArtifactScan.objects.get().verdict == "safe"
    assert Job.objects.count() == 1
    assert set(Blob.objects.values_list("sha256", flat=True)) == blobs_before
    stored = {p.name for p in (Path(django_settings.ARTIFACT_ROOT) / "blobs").rglob("*") if p.is_file()}
    assert stored == blobs_before  # no orphaned blob in the store
    from governance.models import AuditEvent

    assert AuditEvent.objects.filter(action="model_version.artifact_scanned").count() == 1
