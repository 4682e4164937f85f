"""Deployment pages: what a person sees, who may act, and that every action goes through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import services, serving
from deployments.models import Deployment, Endpoint, Phase
from registry.models import Role
from tests.deployments.conftest import iris_onnx

pytestmark = pytest.mark.django_db

ROW = {"rows": [[5.1, 3.5, 1.4, 0.2]]}
CANARY_STEPS = [{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}, {"pause": {}}]


@pytest.fixture
def two_versions(servable_version, registered_model):
    return servable_version(registered_model), servable_version(registered_model, iris_onnx("different"))


@pytest.fixture
def serving_v1(endpoint, two_versions, owner):
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    return endpoint


def _canary(endpoint, owner) -> Deployment:
    return services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=2,
                                     steps=CANARY_STEPS)


def _html(response) -> str:
    return response.content.decode()


# ------------------------------------------------------------------------------------------------ the list


def test_list_groups_endpoints_by_environment_with_what_serves(client, owner, serving_v1):
    _canary(serving_v1, owner)
    client.force_login(owner)
    page = _html(client.get("/deployments/"))
    assert 'id="env-staging"' in page
    assert "churn-staging" in page and "churn</a>" in page
    assert "v1</span> <span class=\"route-weight\">80%" in page
    assert "v2</span> <span class=\"route-weight\">20%" in page
    assert "Canary · Progressing" in page
    assert "New endpoint" in page  # owner maintains churn
    assert "New environment" not in page  # not staff


def test_list_hides_endpoints_of_models_the_user_cannot_see(client, outsider, serving_v1, grant, make_user,
                                                            registered_model):
    client.force_login(outsider)
    page = _html(client.get("/deployments/"))
    assert "churn-staging" not in page
    assert "New endpoint" not in page
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    client.force_login(viewer)
    page = _html(client.get("/deployments/"))
    assert "churn-staging" in page and "New endpoint" not in page


def test_staff_create_an_environment_others_are_refused(client, staff, owner, environment):
    client.force_login(staff)
    assert "New environment" in _html(client.get("/deployments/"))
    response = client.post("/deployments/", {"form": "environment", "name": "production",
                                             "requires_promotion": "on", "follow_stage": "Production"})
    assert response.status_code == 302
    assert "production" in _html(client.get("/deployments/"))
    response = client.post("/deployments/", {"form": "environment", "name": "production"})
    assert response.status_code == 400 and "already exists" in _html(response)
    client.force_login(owner)
    assert client.post("/deployments/", {"form": "environment", "name": "qa"}).status_code == 403


def test_maintainer_creates_an_endpoint_and_bad_names_come_back_with_the_message(client, owner, environment,
                                                                                registered_model):
    client.force_login(owner)
    response = client.post("/deployments/", {"form": "endpoint", "name": "churn-qa", "environment": "staging",
                                             "model": "churn"})
    assert response.status_code == 302 and response["Location"] == "/deployments/churn-qa/"
    assert Endpoint.objects.get(name="churn-qa").model == registered_model
    response = client.post("/deployments/", {"form": "endpoint", "name": "Bad Name", "environment": "staging",
                                             "model": "churn"})
    assert response.status_code == 400
    assert "lower-case letters" in _html(response)


def test_endpoint_form_offers_only_models_the_user_maintains(client, make_user, environment, registered_model,
                                                            grant):
    contributor = make_user("carl")
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    client.force_login(contributor)
    response = client.post("/deployments/", {"form": "endpoint", "name": "x", "environment": "staging",
                                             "model": "churn"})
    assert response.status_code == 400
    assert not Endpoint.objects.filter(name="x").exists()


def test_list_query_count_does_not_grow_with_endpoints(client, owner, environment, registered_model, servable_version,
                                                       django_assert_max_num_queries):
    servable_version(registered_model)
    for i in range(6):
        endpoint = services.endpoint_create(actor=owner, name=f"ep-{i}", environment=environment,
                                            model=registered_model)
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    client.force_login(owner)
    with django_assert_max_num_queries(10):  # the same with one endpoint: no query per row (10th: the Reviews badge)
        response = client.get("/deployments/")
    assert _html(response).count('class="endpoint-row"') == 6


# ------------------------------------------------------------------------------------------- the dashboard


def test_dashboard_needs_a_role_on_the_model(client, outsider, serving_v1):
    assert client.get("/deployments/churn-staging/").status_code == 302  # to the login page
    client.force_login(outsider)
    assert client.get("/deployments/churn-staging/").status_code == 404
    assert client.get("/deployments/churn-staging/deploy").status_code == 404
    assert client.post("/deployments/churn-staging/deployments/1/abort").status_code == 404


def test_dashboard_shows_routing_split_chart_history_and_polls(client, owner, serving_v1):
    _canary(serving_v1, owner)
    client.force_login(owner)
    response = client.get("/deployments/churn-staging/")
    page = _html(response)
    assert response.status_code == 200
    assert 'hx-trigger="every 5s"' in page and 'hx-get="/deployments/churn-staging/"' in page
    assert 'id="chart-split"' in page and '"type":"pie"' in page.replace(" ", "")
    assert "Canary of v2 (from v1)" in page
    assert 'class="candidate-weight">20%' in page
    assert 'aria-current="step">Pause until promoted' in page
    for label in ("Pause", "Promote", "Promote fully", "Abort", "Roll back"):
        assert f">{label}</button>" in page
    assert ">Resume</button>" not in page
    assert page.count('class="history-row"') == 2
    assert "Deploy a version" in page


def test_htmx_poll_gets_only_the_live_fragment(client, owner, serving_v1):
    client.force_login(owner)
    response = client.get("/deployments/churn-staging/", HTTP_HX_REQUEST="true")
    page = _html(response)
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="live"')
    assert "<html" not in page and "What served at" not in page
    assert "HX-Request" in response["Vary"]


def test_viewer_sees_the_dashboard_without_controls_and_is_refused_actions(client, owner, serving_v1, make_user,
                                                                           registered_model, grant):
    d = _canary(serving_v1, owner)
    viewer = make_user("vera")
    grant(registered_model, viewer, Role.VIEWER)
    client.force_login(viewer)
    page = _html(client.get("/deployments/churn-staging/"))
    assert "Canary of v2" in page and ">Abort</button>" not in page and "Deploy a version" not in page
    response = client.post(f"/deployments/churn-staging/deployments/{d.pk}/abort")
    assert response.status_code == 403 and "maintainer role" in _html(response)
    assert client.get("/deployments/churn-staging/deploy").status_code == 403
    d.refresh_from_db()
    assert d.phase == Phase.PROGRESSING


def test_actions_call_the_services_and_redirect(client, owner, serving_v1):
    d = _canary(serving_v1, owner)
    client.force_login(owner)
    url = f"/deployments/churn-staging/deployments/{d.pk}/"
    response = client.post(url + "promote")
    assert response.status_code == 302 and response["Location"] == "/deployments/churn-staging/"
    d.refresh_from_db()
    assert d.weight == 60 and d.step_index == 3
    page = _html(client.get("/deployments/churn-staging/"))
    assert "Promoted to the next step" in page and 'class="candidate-weight">60%' in page
    assert client.post(url + "pause").status_code == 302
    d.refresh_from_db()
    assert d.phase == Phase.PAUSED
    assert client.post(url + "resume").status_code == 302
    d.refresh_from_db()
    assert d.phase == Phase.PROGRESSING
    client.post(url + "rollback")
    d.refresh_from_db()
    assert d.phase == Phase.FAILED
    serving_v1.refresh_from_db()
    assert [(r["number"], r["weight"]) for r in serving_v1.routing["routes"]] == [(1, 100)]
    page = _html(client.get("/deployments/churn-staging/"))
    assert "Rolled back by owner: no reason given" in page and ">Roll back</button>" not in page


def test_refused_action_shows_a_message_not_an_error_page(client, owner, serving_v1):
    d = _canary(serving_v1, owner)
    client.force_login(owner)
    response = client.post(f"/deployments/churn-staging/deployments/{d.pk}/resume", follow=True)
    assert response.status_code == 200
    assert "it cannot be resumed" in _html(response)
    assert client.post(f"/deployments/churn-staging/deployments/{d.pk}/explode").status_code == 404
    assert client.get(f"/deployments/churn-staging/deployments/{d.pk}/abort").status_code == 405


def test_actions_need_csrf(owner, serving_v1):
    from django.test import Client

    d = _canary(serving_v1, owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/deployments/churn-staging/deployments/{d.pk}/abort").status_code == 403
    d.refresh_from_db()
    assert d.phase == Phase.PROGRESSING


def test_rollback_of_a_finished_deployment_returns_to_the_last_good_version(client, owner, serving_v1):
    d = services.deployment_start(actor=owner, endpoint=serving_v1, strategy="direct", version=2)
    client.force_login(owner)
    assert ">Roll back</button>" in _html(client.get("/deployments/churn-staging/"))
    client.post(f"/deployments/churn-staging/deployments/{d.pk}/rollback")
    serving_v1.refresh_from_db()
    assert serving_v1.routing["routes"][0]["number"] == 1
    assert "rollback of #" in _html(client.get("/deployments/churn-staging/"))


def test_what_served_at(client, owner, serving_v1):
    client.force_login(owner)
    before = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = _html(client.get("/deployments/churn-staging/", {"at": before}))
    assert "had no deployment yet" in page
    later = (timezone.localtime() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    page = _html(client.get("/deployments/churn-staging/", {"at": later}))
    assert 'id="served-at"' in page and "direct deployment" in page
    response = client.get("/deployments/churn-staging/", {"at": "yesterday"})
    assert response.status_code == 400 and "Enter a valid date/time" in _html(response)


def test_traffic_charts_from_gateway_statistics(client, owner, serving_v1, predict):
    services.deployment_start(actor=owner, endpoint=serving_v1, strategy="shadow", version=2, shadow_percent=100)
    for _ in range(5):
        assert predict("churn-staging", ROW).status_code == 200
    serving.drain()
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/"))
    for name in ("requests", "errors", "latency", "agreement"):
        assert f'id="chart-{name}"' in page, name
    assert "Shadow: <strong>v2</strong>" in page and "100% of requests mirrored" in page
    assert "shadow v2 (100% mirrored)" in _html(client.get("/deployments/"))


def test_ab_outcomes_show_method_sizes_p_values_and_conclusion(client, owner, serving_v1):
    d = services.deployment_start(actor=owner, endpoint=serving_v1, strategy="ab", version=2)
    for i in range(40):
        services.outcome_record(deployment=d, actor=owner, metric="converted", value=i % 3 == 0, key=f"user{i}")
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/"))
    assert "A/B outcomes" in page and "converted" in page
    assert "two-proportion z-test" in page and "mSPRT" in page
    assert "No significant difference yet" in page or "significant under the sequential test" in page


# ------------------------------------------------------------------------------------------------ deploy


def _step_rows(steps: list[dict]) -> dict[str, str]:
    """The step editor's formset fields for `steps` (service form), as a browser posts them."""
    data = {"steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "50"}
    for i, step in enumerate(steps):
        (kind, value), = step.items()
        data[f"steps-{i}-kind"] = {"set_weight": "weight", "pause": "pause", "analysis": "analysis"}[kind]
        data[f"steps-{i}-weight"] = str(value) if kind == "set_weight" else ""
        data[f"steps-{i}-pause_seconds"] = str(value.get("duration", "")) if kind == "pause" else ""
    return data


def _deploy_post(**fields) -> dict[str, str]:
    return {"strategy": "canary", "version": "2", **_step_rows(CANARY_STEPS), "shadow_percent": "100",
            "arm_a_weight": "50", "arm_b_weight": "50", "keep_warm_seconds": "300", **fields}


def test_deploy_form_has_a_fieldset_per_strategy_and_a_step_editor(client, owner, serving_v1):
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/deploy"))
    for strategies in ('"canary"', '"blue_green"', '"shadow"', '"ab"', '"canary shadow ab"',
                       '"blue_green canary shadow ab"'):
        assert f"data-strategies={strategies}" in page, strategies
    assert "data-strategy-select" in page and "Version 2" in page
    assert 'name="steps"' not in page and "set_weight" not in page  # no JSON to type
    # The default canary, one row a step: 10%, pause 60 s, analysis, 50%, pause 60 s, analysis.
    assert 'name="steps-TOTAL_FORMS" value="6"' in page
    assert 'name="steps-0-weight" value="10"' in page and 'name="steps-1-pause_seconds" value="60"' in page
    assert '<option value="analysis" selected>' in page
    assert '<template data-formset-template="steps">' in page and "steps-__prefix__-kind" in page
    assert page.count('name="remove_step"') == 7 and 'name="add_step"' in page  # six rows and the template's


def test_deploy_form_starts_a_canary_from_the_step_editor(client, owner, serving_v1):
    client.force_login(owner)
    response = client.post("/deployments/churn-staging/deploy",
                           _deploy_post(max_error_rate_percent="2", max_p95_ms="150", window_seconds="30"))
    assert response.status_code == 302, _html(response)
    d = Deployment.objects.get(strategy="canary")
    assert (d.weight, d.step_index, d.steps) == (20, 1, CANARY_STEPS)
    assert (d.analysis["max_error_rate"], d.analysis["max_p95_ms"], d.analysis["window_seconds"]) == (0.02, 150, 30)
    assert d.analysis["min_requests"] == 20  # the default for what was left empty


def test_deploy_form_ignores_the_fields_of_other_strategies(client, owner, serving_v1):
    client.force_login(owner)
    rows = {"steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-0-kind": "weight", "steps-0-weight": "900"}
    response = client.post("/deployments/churn-staging/deploy", {
        "strategy": "shadow", "version": "2", "shadow_percent": "30", **rows, "arm_a_weight": "", "arm_b_weight": "",
        "keep_warm_seconds": "0"})
    assert response.status_code == 302, _html(response)
    d = Deployment.objects.get(strategy="shadow")
    assert (d.shadow_percent, d.steps, d.arms) == (30, [], [])


def test_step_editor_adds_and_removes_rows_without_javascript(client, owner, serving_v1):
    client.force_login(owner)
    response = client.post("/deployments/churn-staging/deploy", _deploy_post(add_step="1"))
    page = _html(response)
    assert response.status_code == 200 and 'name="steps-TOTAL_FORMS" value="5"' in page
    assert '<select name="steps-4-kind"' in page and not Deployment.objects.filter(strategy="canary").exists()
    response = client.post("/deployments/churn-staging/deploy", _deploy_post(remove_step="0"))
    page = _html(response)
    assert 'name="steps-TOTAL_FORMS" value="3"' in page
    # What was typed stays: the first row is now the open pause, then 60%, then the last pause.
    assert '<option value="pause" selected>' in page and 'name="steps-1-weight" value="60"' in page
    assert '<option value="canary" selected>' in page and '<option value="2" selected>' in page
    assert not Deployment.objects.filter(strategy="canary").exists()


@pytest.mark.parametrize("rows, message", [
    ([{"kind": "weight", "weight": ""}], "Give the candidate&#x27;s share of traffic"),
    ([{"kind": "weight", "weight": "150"}], "less than or equal to 100"),
    ([{"kind": "pause", "pause_seconds": "0"}], "greater than or equal to 1"),
    ([{"kind": "jump"}], "Select a valid choice"),
    ([], "A canary needs at least one step"),
])
def test_step_editor_errors_show_beside_their_row(client, owner, serving_v1, rows, message):
    client.force_login(owner)
    data = _deploy_post(**{"steps-TOTAL_FORMS": str(len(rows))})
    for i, row in enumerate(rows):
        data.update({f"steps-{i}-{k}": v for k, v in row.items()})
    response = client.post("/deployments/churn-staging/deploy", data)
    assert response.status_code == 400
    assert message in _html(response)
    assert not Deployment.objects.filter(strategy="canary").exists()


def test_deploy_ab_weights_reach_the_service(client, owner, serving_v1):
    client.force_login(owner)
    response = client.post("/deployments/churn-staging/deploy", {
        "strategy": "ab", "version": "2", "arm_a_weight": "70", "arm_b_weight": "30", "keep_warm_seconds": "0"})
    assert response.status_code == 302, _html(response)
    assert [(a["number"], a["weight"]) for a in Deployment.objects.get(strategy="ab").arms] == [(1, 70), (2, 30)]


@pytest.mark.parametrize("auto", [False, True])
def test_deploy_blue_green_holds_at_preview_unless_asked(client, owner, serving_v1, auto):
    client.force_login(owner)
    data = {"strategy": "blue_green", "version": "2", "keep_warm_seconds": "60"}
    if auto:
        data["auto_promote"] = "on"
    assert client.post("/deployments/churn-staging/deploy", data).status_code == 302
    d = services.rollout_evaluate(deployment=Deployment.objects.get(strategy="blue_green"))
    assert d.auto_promote is auto
    assert d.phase == (Phase.PROMOTING if auto else Phase.PAUSED)
    page = _html(client.get("/deployments/churn-staging/"))
    if not auto:
        assert "Preview: <strong>v2</strong>" in page and ">Switch to v2</button>" in page
        assert ">Resume</button>" not in page


@pytest.mark.parametrize("data, message", [
    ({"max_error_rate_percent": "300"}, "less than or equal to 100"),
    ({"version": "1"}, "already serves version 1"),
    ({"version": "9"}, "Select a valid choice"),
    ({"strategy": "ab", "arm_a_weight": "70", "arm_b_weight": "20"}, "must add up to 100"),
    ({"strategy": "ab", "arm_a_weight": ""}, "Give each arm"),
    ({"strategy": "shadow", "shadow_percent": "0"}, "greater than or equal to 1"),
])
def test_bad_deploy_input_rerenders_the_form_with_the_message(client, owner, serving_v1, data, message):
    client.force_login(owner)
    response = client.post("/deployments/churn-staging/deploy", _deploy_post(**data))
    assert response.status_code == 400
    assert message in _html(response)
    assert 'name="steps-0-kind"' in _html(response)
    assert not Deployment.objects.filter(phase=Phase.PROGRESSING).exists()


def test_versions_that_cannot_be_deployed_are_disabled_with_the_reason(client, owner, serving_v1, registered_model,
                                                                       servable_version, make_version,
                                                                       django_capture_on_commit_callbacks):
    from tests.registry.pickle_corpus import MALICIOUS

    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model, files={"model.pkl": MALICIOUS["builtins.eval"][0]})  # version 3
    servable_version(registered_model, sign=False)  # version 4
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/deploy"))
    assert '<option value="3" disabled>Version 3 — cannot deploy: quarantined (model.pkl)</option>' in page
    assert ('<option value="4" disabled>Version 4 — cannot deploy: unsigned, and environment staging requires '
            'signed versions</option>') in page
    assert '<option value="2" selected>Version 2</option>' in page  # the newest deployable one is chosen
    assert "Version 3: quarantined (model.pkl)" in page  # listed in words too
    response = client.post("/deployments/churn-staging/deploy", _deploy_post(version="3"))
    assert response.status_code == 400
    assert "Version 3 cannot be deployed: quarantined (model.pkl)." in _html(response)
    assert "ONNX" not in _html(response).split("Version 3 cannot be deployed")[1][:80]
    assert not Deployment.objects.filter(strategy="canary").exists()


def test_environment_form_sets_the_signature_rule(client, staff):
    client.force_login(staff)
    page = _html(client.get("/deployments/"))
    assert 'name="requires_signature"' in page and "Requires signed versions" in page
    response = client.post("/deployments/", {"form": "environment", "name": "lab", "description": ""})
    assert response.status_code == 302
    response = client.post("/deployments/", {"form": "environment", "name": "prod", "requires_signature": "on"})
    assert response.status_code == 302
    from deployments.models import Environment

    assert dict(Environment.objects.values_list("name", "requires_signature")) == {"lab": False, "prod": True}


# ------------------------------------------------------------------------------------------------ rollback


def test_an_operators_rollback_is_shown_with_who_and_why(client, owner, serving_v1):
    d = _canary(serving_v1, owner)
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/"))
    assert 'name="reason"' in page and "Reason for rolling back" in page and "Reason for aborting" in page
    assert 'hx-preserve="true"' in page  # the 5-second poll keeps what is being typed
    response = client.post(f"/deployments/churn-staging/deployments/{d.pk}/rollback",
                           {"reason": "p95 doubled at 20%"}, follow=True)
    page = _html(response)
    assert f"Rolled back: deployment #{d.pk} is rolled back (p95 doubled at 20%)." in page
    assert '<span class="badge rollout-phase phase-failed">Rolled back by owner: p95 doubled at 20%</span>' in page
    assert '<td class="history-phase">Rolled back by owner: p95 doubled at 20%</td>' in page


# ------------------------------------------------------------------------------------------------ charts


def test_charts_follow_the_rollout_window_in_fine_points(client, owner, serving_v1, predict):
    from deployments import selectors

    d = _canary(serving_v1, owner)
    for _ in range(5):
        assert predict("churn-staging", ROW).status_code == 200
    serving.drain()
    client.force_login(owner)
    page = _html(client.get("/deployments/churn-staging/"))
    assert f"Traffic since deployment #{d.pk} started" in page and "one point per 10 s" in page
    series = selectors.traffic_series(endpoint=serving_v1, since=d.started_at - timedelta(seconds=10))
    assert series["bucket_seconds"] == 10
    latencies = [v for s in series["series"] for v in s["p50_ms"] + s["p95_ms"] if v is not None]
    assert latencies and all(v == round(v, 1) for v in latencies)
    # A long window gets coarser points; the API's fixed window stays per minute.
    assert selectors.chart_resolution(2 * 3600) == 60 and selectors.chart_resolution(7 * 86400) == 3600
    assert selectors.traffic_series(endpoint=serving_v1, minutes=30)["bucket_seconds"] == 60
    # No rollout in force or just ended: the last hour.
    Deployment.objects.filter(pk=d.pk).update(phase=Phase.ABORTED, finished_at=timezone.now() - timedelta(hours=2))
    assert "Traffic, last hour" in _html(client.get("/deployments/churn-staging/"))


def test_a_deploy_post_without_the_step_editor_is_refused_not_an_error(client, owner, serving_v1):
    client.force_login(owner)
    response = client.post("/deployments/churn-staging/deploy", {"strategy": "canary", "version": "2",
                                                                 "keep_warm_seconds": "0", "steps-TOTAL_FORMS": "x"})
    assert response.status_code == 400 and "A canary needs at least one step" in _html(response)
    response = client.post("/deployments/churn-staging/deploy", {"strategy": "canary", "version": "2",
                                                                 "remove_step": "many", "steps-TOTAL_FORMS": "-3"})
    assert response.status_code == 200 and 'name="steps-TOTAL_FORMS" value="0"' in _html(response)
    assert not Deployment.objects.filter(strategy="canary").exists()
