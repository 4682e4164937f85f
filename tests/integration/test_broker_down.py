"""With the broker down, the web server does not wait on it: uploads and conversion requests answer at once, their
jobs stay queued in the database for the sweeper (uWSGI from deploy/uwsgi.ini, a broker address nobody listens on)."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.registry.pickle_corpus import benign_models

ROOT = Path(__file__).resolve().parents[2]
UWSGI = Path(sys.executable).with_name("uwsgi")
UPLOADS = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, token, database path) of uWSGI on SQLite whose REDIS_URL points at a port nothing listens on."""
    if not UWSGI.exists():
        pytest.fail(f"{UWSGI} is missing: pyuwsgi is a dependency (pip install -e .)")
    var = tmp_path_factory.mktemp("broker-down-var")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    port = free_port()
    env.update({"STRATUM_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "stratum.settings", "STRATUM_HTTPS": "false",
                "STRATUM_BIND": f"127.0.0.1:{port}", "STRATUM_WEB_PROCESSES": "1"})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    script = ("from django.contrib.auth import get_user_model; from registry import access; "
              "u = get_user_model().objects.create_user('web', password='web-pw-123456-x'); "
              "print(access.token_create(user=u, actor=u, name='web')[1])")
    token = subprocess.run([*manage, "shell", "-c", script], env=env, cwd=ROOT, check=True, capture_output=True,
                           text=True, timeout=120).stdout.strip().splitlines()[-1]
    env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # the broker (and cache) is down from the start
    log = open(var / "uwsgi.log", "wb")
    proc = subprocess.Popen([str(UWSGI), "--ini", str(ROOT / "deploy" / "uwsgi.ini")], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"uWSGI exited with {proc.returncode}: {(var / 'uwsgi.log').read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status < 600:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("uWSGI did not answer within 90 s")
            time.sleep(0.3)
        yield port, token, var / "stratum.sqlite3"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _call(port: int, token: str, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.monotonic() - started
    conn.close()
    return response.status, data, elapsed


def test_uploads_and_conversions_do_not_wait_on_a_broker_that_is_down(server):
    port, token, database = server
    status, body, _ = _call(port, token, "POST", "/api/v1/models", json.dumps({"name": "churn"}).encode(),
                            "application/json")
    assert status == 201, body
    status, body, _ = _call(port, token, "POST", "/api/v1/models/churn/versions", json.dumps({}).encode(),
                            "application/json")
    assert status == 201, body
    model = pickle.dumps(benign_models()["logreg"])
    timings = []
    for i in range(UPLOADS):  # each upload queues a scan job, dispatched after commit
        status, body, elapsed = _call(port, token, "PUT", f"/api/v1/models/churn/versions/1/artifacts/m{i}.pkl",
                                      model, "application/octet-stream")
        assert status == 201, body
        timings.append(elapsed)
    status, body, elapsed = _call(port, token, "POST", "/api/v1/models/churn/versions/1/conversions",
                                  json.dumps({"path": "m0.pkl"}).encode(), "application/json")
    assert status == 202, body
    p50 = statistics.median(timings)
    print(f"broker down: upload p50 {p50 * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms; "
          f"conversion request {elapsed * 1000:.0f} ms")
    assert p50 <= 0.5 and max(timings) < 2.5 and elapsed < 2.5  # a connect with retries took about 6 s each
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT kind, state, dispatched_at FROM registry_job").fetchall()
    assert len(rows) == UPLOADS + 1
    assert {(kind, state, dispatched) for kind, state, dispatched in rows} <= {
        ("scan", "queued", None), ("convert", "queued", None)}  # the rows are the queue: the sweeper sends them
