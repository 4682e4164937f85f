"""The gateway keeps serving when the shared cache (Redis) is down or does not answer: rate limits are counted per
process, the outage is logged once, and a dead Redis costs a request milliseconds, not seconds."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from django.conf import settings as django_settings

from deployments import services

pytestmark = pytest.mark.django_db

ROW = [5.1, 3.5, 1.4, 0.2]
NAME = "churn-staging"


def redis_cache(url: str) -> dict:
    """CACHES as stratum/settings.py builds them for REDIS_URL=url (same timeouts)."""
    timeout = django_settings.CACHE_TIMEOUT_SECONDS
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "KEY_PREFIX": "stratum",
                        "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout}}}


@pytest.fixture
def silent_redis():
    """A Redis URL whose server accepts connections and never answers (a hung or overloaded Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


@pytest.fixture
def live(servable_version, registered_model, endpoint, owner):
    version = servable_version(registered_model)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    return version


def test_predictions_go_on_with_the_cache_refused_and_the_outage_is_logged_once(live, predict, settings, caplog):
    predict(NAME, {"rows": [ROW]})  # warm: routing, session, token
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="deployments.serving.access"):
        responses = [predict(NAME, {"rows": [ROW]}) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5, responses[-1].content
    assert responses[-1].json()["predictions"] == [0]
    warnings = [r for r in caplog.records if r.name == "deployments.serving.access"]
    assert len(warnings) == 1 and "per process" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # one line, no traceback


def test_the_rate_limit_still_holds_per_process_while_the_cache_is_down(live, predict, settings):
    settings.STRATUM_SERVING_RATE_PER_MINUTE = 3
    if time.time() % 60 > 45:  # the count restarts each minute: start early in one, so all five land in it
        time.sleep(61 - time.time() % 60)
    predict(NAME, {"rows": [ROW]})  # one counted in the shared (local-memory) cache
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")
    statuses = [predict(NAME, {"rows": [ROW]}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    body = predict(NAME, {"rows": [ROW]}).json()
    assert body["error"]["code"] == "RATE_LIMITED"


def test_a_redis_that_never_answers_costs_one_timeout_then_milliseconds(live, predict, settings, silent_redis):
    predict(NAME, {"rows": [ROW]})
    settings.CACHES = redis_cache(silent_redis)
    started = time.perf_counter()
    first = predict(NAME, {"rows": [ROW]})
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rest = [predict(NAME, {"rows": [ROW]}) for _ in range(20)]
    rest_seconds = time.perf_counter() - started
    assert first.status_code == 200 and {r.status_code for r in rest} == {200}
    # The first request waits for the socket timeout once; the next ones skip the cache for a while.
    assert first_seconds < django_settings.CACHE_TIMEOUT_SECONDS * 2 + 0.5, first_seconds
    assert rest_seconds < 1.0, rest_seconds


def test_shared_counting_resumes_once_the_cache_answers_again(live, predict, settings, monkeypatch, caplog, owner):
    from django.core.cache import cache

    from deployments.serving import access
    from registry.models import AccessToken

    monkeypatch.setattr(access, "CACHE_RETRY_SECONDS", 0.0)
    working = settings.CACHES
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")
    assert predict(NAME, {"rows": [ROW]}).status_code == 200
    settings.CACHES = working
    with caplog.at_level(logging.WARNING, logger="deployments.serving.access"):
        assert predict(NAME, {"rows": [ROW]}).status_code == 200
    assert any("shared again" in r.getMessage() for r in caplog.records)
    token_prefix = AccessToken.objects.filter(user=owner, name="serving").values_list("prefix", flat=True).get()
    assert cache.get(f"serve-rate:{token_prefix}:{int(time.time() // 60)}") is not None
