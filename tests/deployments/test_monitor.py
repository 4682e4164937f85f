"""The embedded default's rollout monitor: with no broker, the web process evaluates rollouts on its own clock.

These tests inject the clock the rollouts are judged on; the monitor thread on the real clock is exercised in
tests/integration/test_rollout_monitor.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deployments import monitor, services
from deployments.models import Deployment, Phase
from tests.deployments.conftest import iris_onnx


def test_disabled_unless_asked_for_and_never_beside_a_broker(settings):
    settings.STRATUM_EMBEDDED_MONITOR = False
    assert not monitor.enabled()
    settings.STRATUM_EMBEDDED_MONITOR, settings.REDIS_URL = True, "redis://127.0.0.1:6379/0"
    assert not monitor.enabled()
    settings.REDIS_URL = ""
    assert monitor.enabled()


@pytest.fixture
def embedded(settings):
    """The embedded monitor enabled, ticking so rarely that no tick runs during a test; stopped afterwards."""
    settings.STRATUM_EMBEDDED_MONITOR, settings.REDIS_URL = True, ""
    settings.STRATUM_ROLLOUT_MONITOR_SECONDS = 3600
    yield
    monitor.stop()


@pytest.mark.django_db
def test_the_first_request_a_server_handles_starts_the_monitor(embedded, client):
    assert not monitor.running()
    client.get("/healthz")
    assert monitor.running()
    monitor.stop()
    assert not monitor.running()


@pytest.mark.django_db
def test_no_monitor_starts_where_beat_runs_it(embedded, settings, client):
    settings.REDIS_URL = "redis://127.0.0.1:6379/12"
    client.get("/healthz")
    assert not monitor.running()


def test_each_tick_judges_rollouts_on_the_clock_it_is_given(servable_version, registered_model, endpoint, owner):
    stable = servable_version(registered_model)
    candidate = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=candidate.number,
                                       steps=[{"set_weight": 10}, {"pause": {"duration": 60}}, {"set_weight": 50}],
                                       keep_warm_seconds=300)
    start = canary.started_at

    def at(seconds: float) -> Deployment:
        assert monitor.tick(now=start + timedelta(seconds=seconds)) == 1  # the canary is the one rollout to judge
        return Deployment.objects.get(pk=canary.pk)

    early = at(59)
    assert (early.phase, early.weight) == (Phase.PROGRESSING, 10)  # the pause has not run its minute
    promoting = at(61)
    assert (promoting.phase, promoting.weight) == (Phase.PROMOTING, 100)  # steps done; the old version stays warm
    assert promoting.warm_until == start + timedelta(seconds=61 + 300)
    endpoint.refresh_from_db()
    assert [r["number"] for r in endpoint.routing["routes"]] == [candidate.number]
    assert endpoint.routing["rollback_route"]["number"] == stable.number
    assert endpoint.routing["warm"] == [endpoint.routing["rollback_route"]["sha256"]]
    assert at(61 + 299).phase == Phase.PROMOTING
    assert at(61 + 300).phase == Phase.SUCCEEDED
    assert monitor.tick(now=start + timedelta(seconds=61 + 301)) == 0  # nothing left to judge
    endpoint.refresh_from_db()
    assert endpoint.routing["warm"] == [] and endpoint.routing["routes"][0]["number"] == candidate.number
