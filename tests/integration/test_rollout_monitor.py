"""The rollout monitor on the real clock: a Celery worker with embedded beat rolls back, promotes and judges shadows;
with no broker, the web process's own monitor thread moves a rollout through its timed steps."""

from __future__ import annotations

import os
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

from deployments import monitor, services, serving
from deployments.models import AnalysisRun, AnalysisVerdict, Deployment, Phase
from tests.conftest import need_service
from tests.deployments import conftest as deployment_fixtures
from tests.deployments.conftest import broken_onnx, iris_onnx

# The deployments fixtures live in tests/deployments/conftest.py; these tests reuse them (not its autouse one).
servable_version = deployment_fixtures.servable_version
environment = deployment_fixtures.environment
endpoint = deployment_fixtures.endpoint
serving_token = deployment_fixtures.serving_token
predict = deployment_fixtures.predict

REDIS_URL = os.environ.get("STRATUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"stratum-test-{uuid.uuid4().hex[:12]}"  # a queue of our own: parallel runs never take our messages
SETOSA = [5.1, 3.5, 1.4, 0.2]
MIXED = [SETOSA, [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5], [5.0, 3.4, 1.5, 0.2]]
TIMEOUT = 60.0

pytestmark = pytest.mark.django_db(transaction=True)  # the worker and the monitor thread share the database


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _start_worker(tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({
        "DATABASE_URL": _database_url(), "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "stratum.settings",
        "STRATUM_ARTIFACT_ROOT": str(django_settings.ARTIFACT_ROOT), "STRATUM_CELERY_QUEUE": QUEUE,
        "STRATUM_ROLLOUT_MONITOR_SECONDS": "1",
    })
    log = open(tmp_path / "worker.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stratum", "worker", "-B", "-s", str(tmp_path / "beat-schedule"),
         "-l", "info", "-c", "1", "-n", f"monitor-{QUEUE}@%h", "-Q", QUEUE, "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def worker(tmp_path, settings):
    """A Celery worker with embedded beat ticking the rollout monitor every second, on its own queue."""
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not name a PostgreSQL database (the worker shares it)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{REDIS_URL} did not answer ({exc.__class__.__name__})")
    # The gateway in this process must see the worker's routing changes at once and write statistics on drain().
    settings.STRATUM_ROUTING_REFRESH_SECONDS = 0
    settings.STRATUM_SERVING_FLUSH_SECONDS = 0
    settings.STRATUM_SERVING_RATE_PER_MINUTE = 0
    serving.reset()
    proc = _start_worker(tmp_path)
    yield proc
    _stop(proc)
    redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    serving.reset()


def _log(tmp_path: Path) -> str:
    path = tmp_path / "worker.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _send(predict, rows: list[list[float]], count: int) -> list:
    responses = [predict("churn-staging", {"rows": [rows[i % len(rows)]]}) for i in range(count)]
    serving.drain()
    return responses


def _drive(predict, deployment: Deployment, rows: list[list[float]], until: set[str], worker, tmp_path) -> tuple:
    """Send traffic in bursts until the worker moves the deployment into one of `until`; return it and the replies."""
    seen = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        seen += _send(predict, rows, 20)
        deployment.refresh_from_db()
        if deployment.phase in until:
            return deployment, seen
        assert deployment.phase in (Phase.PROGRESSING, Phase.PROMOTING), (deployment.phase, deployment.message)
        assert worker.poll() is None, _log(tmp_path)
        time.sleep(0.2)
    raise AssertionError(f"deployment #{deployment.pk} stayed {deployment.phase}: {deployment.message}\n"
                         f"{_log(tmp_path)}")


@pytest.mark.redis
@pytest.mark.postgres
def test_monitor_rolls_back_a_failing_canary(worker, owner, registered_model, endpoint, servable_version, predict,
                                             tmp_path):
    stable = servable_version(registered_model)
    broken = servable_version(registered_model, broken_onnx())
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    canary = services.deployment_start(
        actor=owner, endpoint=endpoint, strategy="canary", version=broken.number,
        steps=[{"set_weight": 50}, {"analysis": {"window_seconds": 1, "min_requests": 5, "max_error_rate": 0.05}}])

    canary, replies = _drive(predict, canary, [[2.0, 1.0, 1.0, 1.0]], {Phase.FAILED}, worker, tmp_path)

    assert {r.status_code for r in replies} <= {200, 502}
    assert any(r.status_code == 502 for r in replies)  # the broken candidate did take live traffic
    assert "analysis failed" in canary.message and "error rate" in canary.message
    run = AnalysisRun.objects.get(deployment=canary)
    assert run.verdict == AnalysisVerdict.FAILED and run.metrics["candidate"]["error_rate"] == 1.0
    after = _send(predict, [[2.0, 1.0, 1.0, 1.0]], 20)
    assert [r.status_code for r in after] == [200] * 20
    assert {r.json()["version"] for r in after} == {stable.number}


@pytest.mark.redis
@pytest.mark.postgres
def test_monitor_promotes_a_healthy_canary_through_its_steps(worker, owner, registered_model, endpoint,
                                                             servable_version, predict, tmp_path):
    stable = servable_version(registered_model)
    good = servable_version(registered_model, iris_onnx("good"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    analysis = {"window_seconds": 1, "min_requests": 5}
    canary = services.deployment_start(
        actor=owner, endpoint=endpoint, strategy="canary", version=good.number,
        steps=[{"set_weight": 30}, {"analysis": analysis}, {"set_weight": 70}, {"analysis": analysis}],
        keep_warm_seconds=2)  # promoting (old version warm) for 2 s, then the monitor finishes it

    canary, replies = _drive(predict, canary, [SETOSA], {Phase.SUCCEEDED}, worker, tmp_path)

    assert {r.status_code for r in replies} == {200}
    assert {r.json()["version"] for r in replies} == {stable.number, good.number}  # both took traffic meanwhile
    passed = AnalysisRun.objects.filter(deployment=canary, verdict=AnalysisVerdict.PASSED)
    assert set(passed.values_list("step_index", flat=True)) == {1, 3}
    assert not AnalysisRun.objects.filter(deployment=canary).exclude(verdict=AnalysisVerdict.PASSED).exists()
    after = _send(predict, [SETOSA], 20)
    assert {r.json()["version"] for r in after} == {good.number}


@pytest.mark.redis
@pytest.mark.postgres
def test_monitor_measures_a_shadows_agreement(worker, owner, registered_model, endpoint, servable_version, predict,
                                              tmp_path):
    stable = servable_version(registered_model)
    different = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    shadow = services.deployment_start(actor=owner, endpoint=endpoint, strategy="shadow", version=different.number,
                                       shadow_percent=100, analysis={"window_seconds": 1, "min_requests": 5})

    def measured() -> AnalysisRun | None:
        return next((run for run in AnalysisRun.objects.filter(deployment=shadow).order_by("pk")
                     if run.metrics.get("candidate", {}).get("agreement") is not None), None)

    replies: list = []
    deadline = time.monotonic() + TIMEOUT
    while (run := measured()) is None:
        assert time.monotonic() < deadline, f"no analysis with agreement recorded\n{_log(tmp_path)}"
        assert worker.poll() is None, _log(tmp_path)
        replies += _send(predict, MIXED, 20)
        time.sleep(0.2)

    agreement = run.metrics["candidate"]["agreement"]
    assert isinstance(agreement, float) and 0 <= agreement <= 1
    assert run.metrics["candidate"]["role"] == "shadow" and run.metrics["candidate"]["compared"] >= 5
    assert run.verdict in (AnalysisVerdict.PASSED, AnalysisVerdict.FAILED)
    assert replies and {r.status_code for r in replies} == {200}
    assert {r.json()["version"] for r in replies} == {stable.number}  # live answers only ever came from stable


@pytest.fixture
def embedded_monitor(settings):
    """The web process's own monitor, as on the embedded default (no broker), ticking every 0.2 s once started."""
    settings.STRATUM_EMBEDDED_MONITOR, settings.REDIS_URL = True, ""
    settings.STRATUM_ROLLOUT_MONITOR_SECONDS = 0.2
    serving.reset()
    yield
    monitor.stop()
    serving.reset()


def test_the_embedded_monitor_advances_rollouts_without_beat(embedded_monitor, servable_version, registered_model,
                                                              endpoint, owner, client):
    stable = servable_version(registered_model)
    candidate = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=candidate.number,
                                       steps=[{"set_weight": 10}, {"pause": {"duration": 1}}, {"set_weight": 50}],
                                       keep_warm_seconds=1)
    client.get("/healthz")  # the first request a server process handles starts the clock
    deadline = time.monotonic() + 20
    while Deployment.objects.get(pk=canary.pk).phase != Phase.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Deployment.objects.get(pk=canary.pk).phase == Phase.SUCCEEDED
