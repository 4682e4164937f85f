"""The embedded default's rollout monitor: with no broker, the web process evaluates rollouts on its own clock."""

from __future__ import annotations

import time

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


@pytest.mark.django_db(transaction=True)
def test_the_embedded_monitor_advances_rollouts_without_beat(settings, servable_version, registered_model, endpoint,
                                                              owner, client):
    settings.STRATUM_EMBEDDED_MONITOR, settings.REDIS_URL = True, ""
    settings.STRATUM_ROLLOUT_MONITOR_SECONDS = 0.2
    stable = servable_version(registered_model)
    candidate = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=candidate.number,
                                       steps=[{"set_weight": 10}, {"pause": {"duration": 1}}, {"set_weight": 50}],
                                       keep_warm_seconds=1)
    client.get("/healthz")  # the first request a server process handles starts the clock
    try:
        deadline = time.monotonic() + 20
        while Deployment.objects.get(pk=canary.pk).phase != Phase.SUCCEEDED and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        monitor.stop()
    assert Deployment.objects.get(pk=canary.pk).phase == Phase.SUCCEEDED
