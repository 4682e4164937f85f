"""What deployments shows on a version's page: the "Deployed at" panel (Overview) and the Deployments tab, with the
live traffic shares of a canary, "Not deployed" when nothing serves the version, and a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments import selectors, services
from registry.models import Role
from tests.deployments.conftest import iris_onnx

pytestmark = pytest.mark.django_db

CANARY_STEPS = [{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}, {"pause": {}}]


@pytest.fixture
def canary(endpoint, servable_version, registered_model, owner):
    """Version 1 serves churn-staging; a canary of version 2 takes 20 % of its traffic."""
    servable_version(registered_model)
    servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    return services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=2,
                                     steps=CANARY_STEPS)


def _panel(html: str) -> str:
    start = html.index('id="deployed-at"')
    return html[start:html.index("</section>", start)]


def test_overview_shows_each_version_share_of_a_live_canary(client, owner, canary):
    client.force_login(owner)
    stable = _panel(client.get("/models/churn/versions/1/").content.decode())
    candidate = _panel(client.get("/models/churn/versions/2/").content.decode())
    assert 'href="/deployments/churn-staging/"' in stable and "staging" in stable
    assert '<strong class="share">80%</strong>' in stable and '<strong class="share">20%</strong>' in candidate
    assert ">canary</span>" in candidate and "Canary rollout" in candidate
    for panel in (stable, candidate):  # the whole split beside this version's share
        assert "v1 80%" in panel and "v2 20% (canary)" in panel


def test_a_version_nothing_serves_says_not_deployed(client, owner, canary, servable_version, registered_model):
    servable_version(registered_model)
    client.force_login(owner)
    panel = _panel(client.get("/models/churn/versions/3/").content.decode())
    assert "Not deployed" in panel and "churn-staging" not in panel


def test_after_a_rollback_the_candidate_is_not_deployed_and_the_tab_keeps_the_rollout(client, owner, canary):
    services.deployment_rollback(deployment=canary, actor=owner, reason="latency regression")
    client.force_login(owner)
    assert "Not deployed" in _panel(client.get("/models/churn/versions/2/").content.decode())
    tab = client.get("/models/churn/versions/2/deployments/").content.decode()
    assert 'id="tab-deployments"' in tab and 'aria-selected="true"' in tab.split('id="tab-deployments"')[1][:200]
    assert "Not deployed" in tab and "v1 → v2" in tab and "Rolled back by owner: latency regression" in tab


def test_deployments_tab_lists_rollouts_and_htmx_gets_only_the_tab(client, owner, canary):
    client.force_login(owner)
    partial = client.get("/models/churn/versions/1/deployments/",
                         headers={"HX-Request": "true", "HX-Target": "version-tabs"}).content.decode()
    assert "<html" not in partial and 'role="tablist"' in partial and 'id="version-rollouts"' in partial
    assert "from this version" in partial and "this version deployed" in partial  # the canary, and the direct one


def test_a_viewer_who_cannot_see_the_endpoint_model_sees_nothing_of_it(client, outsider, canary, registered_model,
                                                                      grant):
    # Endpoints are scoped like their model: a viewer of the model sees them; the page itself is refused to others.
    client.force_login(outsider)
    assert client.get("/models/churn/versions/1/deployments/").status_code == 404
    grant(registered_model, outsider, Role.VIEWER)
    assert "churn-staging" in _panel(client.get("/models/churn/versions/1/").content.decode())


def test_deployed_at_reads_in_a_fixed_number_of_queries(owner, canary, environment, registered_model,
                                                        servable_version):
    version = canary.stable_version
    with CaptureQueriesContext(connection) as one:
        rows = selectors.version_deployed_at(actor=owner, version=version)
    assert len(rows) == 1
    for i in range(3):
        endpoint = services.endpoint_create(actor=owner, name=f"churn-extra-{i}", environment=environment,
                                            model=registered_model)
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    with CaptureQueriesContext(connection) as four:
        rows = selectors.version_deployed_at(actor=owner, version=version)
    assert len(rows) == 4 and len(four) == len(one)
