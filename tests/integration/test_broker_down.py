"""With the broker down, the web server does not wait on it: uploads and conversion requests answer at once, their
jobs stay queued in the database for the sweeper (uWSGI from deploy/uwsgi.ini, a broker address nobody listens on)."""

from __future__ import annotations

import http.client
import json
import pickle
import sqlite3
import statistics
import time

import pytest

from tests.conftest import free_port
from tests.integration.uwsgi_support import uwsgi_stratum
from tests.registry.pickle_corpus import benign_models

UPLOADS = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, token, database path) of uWSGI on SQLite whose REDIS_URL points at a port nothing listens on."""
    var = tmp_path_factory.mktemp("broker-down-var")
    # The broker (and cache) is down from the start.
    with uwsgi_stratum(var, processes=1, env_after_setup={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}) as (
            port, token):
        yield port, token, var / "stratum.sqlite3"


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
