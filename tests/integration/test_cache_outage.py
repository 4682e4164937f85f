"""The registry with its cache down: alias reads come from the database, writes still answer (their retirement of
cached reads is owed, and paid before the cache is used again), and /readyz says "degraded", not "failed"."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings as django_settings

from registry import caching, services

pytestmark = pytest.mark.django_db(transaction=True)  # retirements run on commit

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def redis_cache(url: str) -> dict:
    """CACHES as stratum/settings.py builds them for REDIS_URL=url (same timeouts)."""
    timeout = django_settings.CACHE_TIMEOUT_SECONDS
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "KEY_PREFIX": "stratum",
                        "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout}}}


@pytest.fixture(autouse=True)
def _clean_outage():
    from django.core.cache import cache

    cache.clear()
    caching.forget_outage()
    yield
    caching.forget_outage()


@pytest.fixture
def champion(owner, make_version):
    """Model "cached" with versions 1 (aliased champion) and 2."""
    model = services.model_create(actor=owner, name="cached")
    v1 = make_version(model)
    make_version(model)
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    return model


def test_alias_reads_and_writes_answer_from_the_database_with_the_cache_refused(champion, owner, api_client_for,
                                                                                settings, caplog):
    api = api_client_for(owner)
    settings.CACHES = redis_cache(DEAD_REDIS)
    with caplog.at_level(logging.WARNING, logger="registry.caching"):
        reads = [api.get("/api/v1/models/cached/aliases/champion") for _ in range(3)]
        moved = api.put("/api/v1/models/cached/aliases/champion", {"version": 2}, format="json")
        after = api.get("/api/v1/models/cached/aliases/champion")
        mlflow = api.get("/api/2.0/mlflow/registered-models/alias", {"name": "cached", "alias": "champion"})
    assert [r.status_code for r in reads] == [200] * 3 and reads[0].json()["version"] == 1
    assert moved.status_code == 200, moved.content
    assert after.status_code == 200 and after.json()["version"] == 2
    assert mlflow.status_code == 200 and mlflow.json()["model_version"]["version"] == "2"
    warnings = [r for r in caplog.records if r.name == "registry.caching"]
    assert len(warnings) == 1 and warnings[0].exc_info is None


def test_a_change_made_while_the_cache_was_down_is_seen_once_it_answers_again(champion, owner, api_client_for,
                                                                             settings, monkeypatch):
    api = api_client_for(owner)
    working = settings.CACHES
    monkeypatch.setattr(caching, "CACHE_RETRY_SECONDS", 0.0)  # try the cache again at once
    assert api.get("/api/v1/models/cached/aliases/champion").json()["version"] == 1  # cached: version 1
    settings.CACHES = redis_cache(DEAD_REDIS)
    assert api.put("/api/v1/models/cached/aliases/champion", {"version": 2}, format="json").status_code == 200
    settings.CACHES = working  # the same local-memory cache, still holding version 1 under the model's generation
    assert api.get("/api/v1/models/cached/aliases/champion").json()["version"] == 2


def test_readyz_reports_a_dead_cache_as_degraded_and_stays_ready(client, settings):
    settings.REDIS_URL = ""
    settings.CACHES = redis_cache(DEAD_REDIS)
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["cache"].startswith("degraded") and "per process" in checks["cache"]
