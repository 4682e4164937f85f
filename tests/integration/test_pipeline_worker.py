"""A real Celery worker on real Redis: queued with the broker unreachable, swept, killed -9 mid-job, finished once;
a conversion swept before its scan waits for it; a real lock timeout is retried."""

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
from django.db import connection, transaction

from registry import services, tasks
from registry.models import Artifact, ArtifactScan, Blob, Job, JobState
from registry.pipeline.convert import convert_enqueue
from tests.conftest import need_service, spooled
from tests.registry.pickle_corpus import benign_models

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


def _start_worker(tmp_path: Path, name: str, level: str = "warning", **settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({
        "DATABASE_URL": _database_url(), "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "stratum.settings",
        "STRATUM_ARTIFACT_ROOT": str(django_settings.ARTIFACT_ROOT), "STRATUM_JOB_TEST_DELAY_SECONDS": "4",
        "STRATUM_JOB_STALE_SECONDS": "2", "STRATUM_JOB_SWEEP_SECONDS": "1", "STRATUM_CELERY_QUEUE": QUEUE,
        **settings,
    })
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stratum", "worker", "-B", "-s", str(tmp_path / f"{name}-beat"),
         "-l", level, "-c", "1", "-n", f"{name}-{QUEUE}@%h", "-Q", QUEUE, "--without-mingle", "--without-gossip"],
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


def _need_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{REDIS_URL} did not answer ({exc.__class__.__name__})")


def _broker_down(monkeypatch) -> None:
    """This test process has no broker (tasks would run in-process): make dispatch fail so the row is all there is."""
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable while the upload commits")

    monkeypatch.setattr(tasks.job_execute, "apply_async", broker_down)


def test_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(owner, tmp_path, monkeypatch):
    _need_redis()
    _broker_down(monkeypatch)
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
        killed_at = time.monotonic()
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
        # Stale after 2 s, swept every second, 4 s of work, a worker to start: well within the 60 s promised with
        # the defaults (30 s stale, 15 s sweep).
        print(f"killed worker's job finished {time.monotonic() - killed_at:.1f} s after the kill")
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


def test_a_conversion_swept_before_its_scan_waits_for_it_and_then_succeeds(owner, tmp_path, monkeypatch):
    _need_redis()
    _broker_down(monkeypatch)
    model = services.model_create(actor=owner, name="churn")
    with transaction.atomic():  # the conversion's row is written before the scan's (queued once this commits)
        version = services.version_create(
            model=model, actor=owner, files=[("model.pkl", spooled(pickle.dumps(benign_models()["logreg"])))])
        convert = convert_enqueue(artifact=Artifact.objects.get(version=version), actor=owner)
    scan = Job.objects.get(kind="scan")
    assert convert.pk < scan.pk and Job.objects.filter(dispatched_at__isnull=True).count() == 2

    worker = _start_worker(tmp_path, "deps", level="info", STRATUM_JOB_TEST_DELAY_SECONDS="0")
    try:  # the sweeper sends both, the conversion first (by id); the worker takes one at a time
        done = _wait(lambda: Job.objects.filter(pk=convert.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED])
                     .first(), 120, "the conversion to finish")
    finally:
        _stop(worker)
        redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    log = (tmp_path / "deps.log").read_text()
    assert done.state == JobState.SUCCEEDED, done.error + log
    assert f"job {convert.pk} waits: the scan of model.pkl has not finished" in log
    scan.refresh_from_db()
    assert scan.state == JobState.SUCCEEDED and done.started_at > scan.finished_at
    assert done.attempts == 1  # waiting spent no attempt
    assert Artifact.objects.filter(version=version, path="model.onnx", format="onnx").exists()


@pytest.mark.postgres
def test_a_job_that_meets_a_lock_timeout_is_retried_with_backoff_and_succeeds(owner, tmp_path, monkeypatch):
    _need_redis()
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "this run uses SQLite (set DATABASE_URL to a PostgreSQL database)")
    import psycopg

    from governance.audit import ADVISORY_LOCK_KEY

    _broker_down(monkeypatch)
    model = services.model_create(actor=owner, name="churn")
    version = services.version_create(model=model, actor=owner, files=[("notes.txt", spooled(b"plain text"))])
    job = Job.objects.get(version=version)
    # Another session holds the audit trail's append lock: the scan's audit event waits 0.3 s for it, then fails
    # with a real lock timeout (SQLSTATE 55P03).
    holder = psycopg.connect(_database_url())
    holder.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    worker = _start_worker(tmp_path, "locks", STRATUM_JOB_TEST_DELAY_SECONDS="0", STRATUM_DB_LOCK_TIMEOUT_MS="300",
                           STRATUM_JOB_RETRY_BASE_SECONDS="1")
    try:
        waiting = _wait(lambda: Job.objects.filter(pk=job.pk, state=JobState.QUEUED, attempts__gte=1).first(), 60,
                        "the scan to meet the lock timeout and be queued again")
        assert "LockNotAvailable" in waiting.error or "lock timeout" in waiting.error, waiting.error
        holder.rollback()  # the lock is released
        done = _wait(lambda: Job.objects.filter(pk=job.pk, state__in=[JobState.SUCCEEDED, JobState.FAILED]).first(),
                     60, "the retried scan to finish")
    finally:
        holder.close()
        _stop(worker)
        redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    assert done.state == JobState.SUCCEEDED, done.error + (tmp_path / "locks.log").read_text()
    assert done.attempts >= 2 and ArtifactScan.objects.filter(artifact__version=version).count() == 1
    from governance.models import AuditEvent

    assert AuditEvent.objects.filter(action="model_version.artifact_scanned").count() == 1
