"""Health and readiness probes, with the real Redis broker when it is reachable."""

from __future__ import annotations

import os

import pytest
import redis

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
    assert response.json()["checks"]["broker"].startswith("broker unreachable")
