"""Health and readiness probes: liveness touches nothing, readiness answers within 2 s whatever its dependencies
do (the real Redis broker when it is reachable, PostgreSQL when the run has it)."""

from __future__ import annotations

import os
import socket
import time

import pytest
import redis
from django.db import connection

from tests.conftest import need_service

REDIS_URL = os.environ.get("STRATUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_healthz_is_public_and_cheap(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_in_process_tasks(client, settings):
    settings.REDIS_URL = ""
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert "in-process" in body["checks"]["broker"]


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_checks_the_real_broker(client, settings):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{REDIS_URL} did not answer ({exc.__class__.__name__})")
    settings.REDIS_URL = REDIS_URL
    assert client.get("/readyz").status_code == 200
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("unreachable")


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a hung Redis, or a PostgreSQL behind a dead link)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


@pytest.mark.django_db
def test_healthz_never_touches_the_database_even_for_a_signed_in_caller(client, owner, api_client_for,
                                                                     django_assert_num_queries):
    client.force_login(owner)  # a session cookie: the session and auth middleware must stay lazy
    api = api_client_for(owner)
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200
        assert api.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_fails_within_two_seconds_when_the_broker_does_not_answer(client, settings, silent_server):
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.perf_counter()
    response = client.get("/readyz")
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] != "ok"
    assert elapsed < 2.0, elapsed


@pytest.mark.postgres
@pytest.mark.django_db
def test_readyz_fails_within_two_seconds_when_postgresql_does_not_answer(client, settings, silent_server):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    settings.REDIS_URL = ""
    # New connections (the probe opens its own) go to a server that accepts and never speaks; libpq would wait for
    # connect_timeout (5 s), the probe's deadline does not. The test's own connection is already open.
    where = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(silent_server))
    try:
        started = time.perf_counter()
        response = client.get("/readyz")
        elapsed = time.perf_counter() - started
    finally:
        connection.settings_dict.update(where)
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("no answer within")
    assert elapsed < 2.0, elapsed
