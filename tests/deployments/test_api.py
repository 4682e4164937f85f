"""Deployment REST API: status codes, JSON, permissions, bad input and the rollout flows through HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from deployments import services, serving
from deployments.models import Deployment, Endpoint, Environment, Outcome, RoutingRecord
from registry.access import token_create
from registry.models import Role
from tests.deployments.conftest import broken_onnx, iris_onnx

pytestmark = pytest.mark.django_db

ROW = {"rows": [[5.1, 3.5, 1.4, 0.2]]}


def _snapshot(endpoint_name: str = "churn-staging") -> tuple:
    ep = Endpoint.objects.filter(name=endpoint_name).first()
    return (Deployment.objects.count(), RoutingRecord.objects.count(), Environment.objects.count(),
            Endpoint.objects.count(), Outcome.objects.count(), ep.generation if ep else None,
            ep.routing if ep else None)


@pytest.fixture
def api(api_client_for, owner):
    return api_client_for(owner)


@pytest.fixture
def live(servable_version, registered_model, endpoint, owner):
    """An endpoint serving v1 (direct), with v2 servable and ready to roll out."""
    v1 = servable_version(registered_model)
    v2 = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v1.number)
    return v1, v2


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------------------------------------- auth


@pytest.mark.parametrize("method,url", [
    ("get", "/api/v1/environments"), ("post", "/api/v1/environments"), ("get", "/api/v1/endpoints"),
    ("get", "/api/v1/endpoints/churn-staging"), ("get", "/api/v1/deployments"), ("post", "/api/v1/deployments"),
    ("post", "/api/v1/deployments/1/abort"), ("get", "/api/v1/deployments/1/outcomes"),
])
def test_anonymous_refused(method, url, endpoint):
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_serve_token_refused_by_api_and_api_token_refused_by_gateway(owner, live, serving_token, predict):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {serving_token(owner)}")
    assert client.get("/api/v1/endpoints").status_code == 401
    _, api_token = token_create(user=owner, actor=owner, name="api", scopes=["api"])
    assert predict("churn-staging", ROW, token=api_token).status_code == 401
    assert predict("churn-staging", ROW).status_code == 200


# ------------------------------------------------------------------------------------------ environments


def test_environments(api_client_for, staff, owner, environment):
    api = api_client_for(owner)
    assert [e["name"] for e in api.get("/api/v1/environments").json()] == ["staging"]
    assert api.get("/api/v1/environments/staging").json()["description"] == "Pre-production."
    _error(api.get("/api/v1/environments/nope"), 404)
    before = Environment.objects.count()
    _error(api.post("/api/v1/environments", {"name": "prod"}, format="json"), 403)
    assert Environment.objects.count() == before
    staff_api = api_client_for(staff)
    r = staff_api.post("/api/v1/environments", {"name": "prod", "requires_promotion": True,
                                                "follow_stage": "Production"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["requires_promotion"] is True and r.json()["name"] == "prod"
    _error(staff_api.post("/api/v1/environments", {"name": "prod"}, format="json"), 409)
    _error(staff_api.post("/api/v1/environments", {"name": "Bad Name"}, format="json"), 400)
    assert Environment.objects.count() == before + 1


# --------------------------------------------------------------------------------------------- endpoints


def test_endpoint_create_list_detail(api, api_client_for, outsider, make_user, grant, registered_model, environment):
    r = api.post("/api/v1/endpoints", {"name": "churn-prod", "environment": "staging", "model": "churn",
                                       "description": "d"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["environment"] == "staging" and body["model"] == "churn" and body["active_deployment"] is None
    assert body["routing"]["routes"] == []
    assert [e["name"] for e in api.get("/api/v1/endpoints?environment=staging&model=churn").json()] == ["churn-prod"]
    assert api.get("/api/v1/endpoints?environment=other").json() == []
    assert api.get("/api/v1/endpoints/churn-prod").json()["name"] == "churn-prod"
    _error(api.post("/api/v1/endpoints", {"name": "churn-prod", "environment": "staging", "model": "churn"},
                    format="json"), 409)
    _error(api.post("/api/v1/endpoints", {"name": "x", "environment": "nope", "model": "churn"}, format="json"), 404)
    _error(api.post("/api/v1/endpoints", {"name": "x", "environment": "staging", "model": "nope"}, format="json"),
           404)
    out = api_client_for(outsider)
    assert out.get("/api/v1/endpoints").json() == []
    _error(out.get("/api/v1/endpoints/churn-prod"), 404)
    _error(out.post("/api/v1/endpoints", {"name": "y", "environment": "staging", "model": "churn"}, format="json"),
           404)
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    _error(api_client_for(viewer).post("/api/v1/endpoints", {"name": "y", "environment": "staging",
                                                             "model": "churn"}, format="json"), 403)
    assert Endpoint.objects.count() == 1


def test_endpoint_detail_shows_routing_and_active_deployment(api, live):
    v1, v2 = live
    body = api.get("/api/v1/endpoints/churn-staging").json()
    assert body["routing"]["routes"] == [{"version": v1.number, "weight": 100, "role": "stable"}]
    assert body["active_deployment"] is None and body["generation"] == body["routing"]["generation"]
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "shadow", "version": v2.number,
                                         "shadow_percent": 50}, format="json")
    assert r.status_code == 201, r.content
    body = api.get("/api/v1/endpoints/churn-staging").json()
    assert body["active_deployment"] == r.json()["id"]
    assert body["routing"]["shadow"] == {"version": v2.number, "weight": 0, "role": "shadow", "percent": 50}
    assert "sha256" not in str(body)


def test_traffic(api, live, predict):
    for _ in range(3):
        assert predict("churn-staging", ROW).status_code == 200
    serving.drain()
    body = api.get("/api/v1/endpoints/churn-staging/traffic?minutes=30").json()
    assert body["minutes"] == 30
    assert sum(sum(s["requests_per_min"]) for s in body["series"]) == 3
    for bad in ("0", "1441", "abc"):
        _error(api.get(f"/api/v1/endpoints/churn-staging/traffic?minutes={bad}"), 400)


def test_history_and_at(api, live, owner, endpoint):
    v1, v2 = live
    history = api.get("/api/v1/endpoints/churn-staging/history").json()
    assert len(history) == 1 and history[0]["routing"]["routes"][0]["version"] == v1.number
    assert history[0]["actor"] == "owner"
    first = RoutingRecord.objects.get()
    RoutingRecord.objects.filter(pk=first.pk).update(at=timezone.now() - timedelta(hours=2))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v2.number)
    at = (timezone.now() - timedelta(hours=1)).isoformat()
    r = api.get("/api/v1/endpoints/churn-staging/history", {"at": at})
    assert r.status_code == 200, r.content
    assert [rec["routing"]["routes"][0]["version"] for rec in r.json()] == [v1.number]
    now = api.get("/api/v1/endpoints/churn-staging/history", {"at": timezone.now().isoformat()}).json()
    assert now[0]["routing"]["routes"][0]["version"] == v2.number
    err = _error(api.get("/api/v1/endpoints/churn-staging/history", {"at": "2000-01-01T00:00:00Z"}), 404)
    assert "served nothing" in err["message"]
    _error(api.get("/api/v1/endpoints/churn-staging/history", {"at": "yesterday"}), 400)
    _error(api.get("/api/v1/endpoints/churn-staging/history", {"at": "2026-13-45T00:00:00"}), 400)


# ------------------------------------------------------------------------------------------ permissions


def test_deploy_permissions(api_client_for, outsider, make_user, grant, registered_model, live):
    _v1, v2 = live
    body = {"endpoint": "churn-staging", "strategy": "direct", "version": v2.number}
    before = _snapshot()
    _error(api_client_for(outsider).post("/api/v1/deployments", body, format="json"), 404)
    d = Deployment.objects.get()
    _error(api_client_for(outsider).get(f"/api/v1/deployments/{d.pk}"), 404)
    _error(api_client_for(outsider).post(f"/api/v1/deployments/{d.pk}/rollback", {}, format="json"), 404)
    assert api_client_for(outsider).get("/api/v1/deployments").json()["results"] == []
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    vapi = api_client_for(viewer)
    assert vapi.get(f"/api/v1/deployments/{d.pk}").status_code == 200
    assert [x["id"] for x in vapi.get("/api/v1/deployments").json()["results"]] == [d.pk]
    _error(vapi.post("/api/v1/deployments", body, format="json"), 403)
    _error(vapi.post(f"/api/v1/deployments/{d.pk}/rollback", {}, format="json"), 403)
    assert _snapshot() == before
    maintainer = make_user("maint")
    grant(registered_model, maintainer, Role.MAINTAINER)
    r = api_client_for(maintainer).post("/api/v1/deployments", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["phase"] == "succeeded" and r.json()["created_by"] == "maint"


# -------------------------------------------------------------------------------------------- bad input


def test_bad_input_changes_nothing(api, live, servable_version, registered_model, client, owner):
    v1, v2 = live
    unsigned = servable_version(registered_model, sign=False)
    unscanned = servable_version(registered_model, scan=False, sign=False)
    base = {"endpoint": "churn-staging", "version": v2.number}
    cases = [
        ({**base, "strategy": "canary", "steps": {"set_weight": 10}}, 400),
        ({**base, "strategy": "canary", "steps": [{"set_weight": 200}]}, 400),
        ({**base, "strategy": "canary", "steps": [{"jump": 1}]}, 400),
        ({**base, "strategy": "ab", "arms": [{"version": v1.number, "weight": 50},
                                             {"version": v2.number, "weight": 40}]}, 400),
        ({**base, "strategy": "ab", "arms": "half"}, 400),
        ({**base, "strategy": "teleport"}, 400),
        ({**base, "strategy": "direct", "version": "two"}, 400),
        ({**base, "strategy": "direct", "analysis": {"max_error_rate": 0.1, "bogus": 1}}, 400),
        ({**base, "strategy": "shadow", "shadow_percent": 0}, 400),
        ({**base, "strategy": "direct", "analysis": {"_routes": {"candidate": {"sha256": "x"}}}}, 400),
        ({**base, "strategy": "direct", "analysis": "strict"}, 400),
        ({**base, "strategy": "direct", "steps": [{"set_weight": 10}]}, 400),
        ({**base, "strategy": "ab", "arms": [{"version": v1.number, "weight": 0},
                                             {"version": v2.number, "weight": 100}]}, 400),
        ({**base, "strategy": "direct", "auto_promote": "sometimes"}, 400),
        ({**base, "strategy": "direct", "version": 99}, 404),
        ({**base, "strategy": "direct", "endpoint": "nope"}, 404),
        ({**base, "strategy": "canary", "version": unsigned.number}, 400),
        ({**base, "strategy": "canary", "version": unscanned.number}, 400),
        ({"strategy": "direct"}, 400),
        ([1, 2], 400),
    ]
    before = _snapshot()
    for body, status in cases:
        err = _error(api.post("/api/v1/deployments", body, format="json"), status)
        assert err["message"], body
        assert _snapshot() == before, body
    _error(api.post("/api/v1/deployments", data="{not json", content_type="application/json"), 400)
    assert _snapshot() == before


def test_second_rollout_refused(api, live):
    _v1, v2 = live
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "blue_green",
                                         "version": v2.number}, format="json")
    assert r.status_code == 201, r.content
    before = _snapshot()
    err = _error(api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "direct",
                                                  "version": v2.number}, format="json"), 409)
    assert "in progress" in err["message"]
    assert _snapshot() == before


# ------------------------------------------------------------------------------------------- lifecycle


def test_list_filters_and_pagination(api, live):
    _v1, v2 = live
    api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "direct", "version": v2.number},
             format="json")
    page = api.get("/api/v1/deployments?max_results=1").json()
    assert len(page["results"]) == 1 and page["next_cursor"]
    rest = api.get(f"/api/v1/deployments?max_results=1&cursor={page['next_cursor']}").json()
    assert rest["results"][0]["id"] < page["results"][0]["id"]
    assert len(api.get("/api/v1/deployments?endpoint=churn-staging&phase=succeeded").json()["results"]) == 2
    assert api.get("/api/v1/deployments?phase=failed").json()["results"] == []
    _error(api.get("/api/v1/deployments?phase=sideways"), 400)
    _error(api.get("/api/v1/deployments?endpoint=nope"), 404)
    _error(api.get("/api/v1/deployments/99999"), 404)


def test_pause_resume_promote_abort_rollback(api, live):
    v1, v2 = live
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "canary", "version": v2.number,
                                         "steps": [{"set_weight": 20}, {"pause": {}}, {"set_weight": 60},
                                                   {"pause": {}}]}, format="json")
    assert r.status_code == 201, r.content
    d = r.json()
    assert d["weight"] == 20 and d["step_index"] == 1 and d["current_step"] == {"pause": {}}
    assert "_routes" not in d["analysis"] and d["analysis"]["max_error_rate"] == 0.05
    url = f"/api/v1/deployments/{d['id']}"
    assert api.post(f"{url}/pause", {"reason": "lunch"}, format="json").json()["phase"] == "paused"
    _error(api.post(f"{url}/pause", {}, format="json"), 409)
    assert api.post(f"{url}/resume").json()["phase"] == "progressing"
    promoted = api.post(f"{url}/promote").json()
    assert promoted["weight"] == 60 and promoted["phase"] == "progressing"
    aborted = api.post(f"{url}/abort", {"reason": "enough"}, format="json").json()
    assert aborted["phase"] == "aborted" and aborted["message"] == "enough" and aborted["weight"] == 0
    assert (aborted["ended_by"], aborted["end_reason"], aborted["phase_label"]) == ("owner", "enough",
                                                                                    "Aborted by owner: enough")
    _error(api.post(f"{url}/abort", {}, format="json"), 409)
    _error(api.post(f"{url}/promote-full"), 409)
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "blue_green",
                                         "version": v2.number}, format="json")
    assert r.json()["auto_promote"] is False  # held at preview until promoted, unless asked
    full = api.post(f"/api/v1/deployments/{r.json()['id']}/promote-full").json()
    assert full["phase"] == "promoting" and full["candidate_version"] == v2.number  # old version kept warm
    full = api.post(f"/api/v1/deployments/{full['id']}/promote-full").json()  # release it now
    assert full["phase"] == "succeeded"
    back = api.post(f"/api/v1/deployments/{full['id']}/rollback", {"reason": "bad"}, format="json")
    assert back.status_code == 200, back.content
    assert back.json()["rollback_of"] == full["id"] and back.json()["candidate_version"] == v1.number
    undone = api.get(f"/api/v1/deployments/{full['id']}").json()
    assert undone["phase_label"] == "Rolled back by owner: bad" and undone["ended_by"] == "owner"
    routes = api.get("/api/v1/endpoints/churn-staging").json()["routing"]["routes"]
    assert routes == [{"version": v1.number, "weight": 100, "role": "stable"}]
    _error(api.post(f"/api/v1/deployments/{d['id']}/pause", {"reason": ["x"]}, format="json"), 400)


def test_canary_flow_with_analysis(api, live, servable_version, registered_model, predict):
    v1, _ = live
    v3 = servable_version(registered_model, broken_onnx())
    r = api.post("/api/v1/deployments", {
        "endpoint": "churn-staging", "strategy": "canary", "version": v3.number,
        "steps": [{"set_weight": 100}, {"analysis": {"window_seconds": 0, "min_requests": 5}}]}, format="json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    for _ in range(10):
        assert predict("churn-staging", {"rows": [[2.0, 1, 1, 1]]}).status_code == 502
    serving.drain()
    services.rollout_evaluate(deployment=Deployment.objects.get(pk=pk))
    body = api.get(f"/api/v1/deployments/{pk}").json()
    assert body["phase"] == "failed"
    assert body["analysis_runs"][0]["verdict"] == "failed"
    assert any(v["version"] == v3.number for v in body["metrics"]["versions"])
    runs = api.get(f"/api/v1/deployments/{pk}/analysis").json()
    assert runs[0]["verdict"] == "failed" and runs[0]["step_index"] == body["analysis_runs"][0]["step_index"]
    assert predict("churn-staging", ROW).json()["version"] == v1.number


def test_ab_outcomes(api, api_client_for, make_user, grant, registered_model, live, predict):
    v1, v2 = live
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "ab", "version": v2.number,
                                         "arms": [{"version": v1.number, "weight": 50},
                                                  {"version": v2.number, "weight": 50}]}, format="json")
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert [a["version"] for a in r.json()["arms"]] == [v1.number, v2.number]
    url = f"/api/v1/deployments/{pk}/outcomes"
    for i in range(30):
        assert predict("churn-staging", ROW, x_stratum_key=f"user{i}").status_code == 200
        res = api.post(url, {"metric": "converted", "value": i % 3 == 0, "key": f"user{i}"}, format="json")
        assert res.status_code == 201, res.content
    res = api.post(url, {"metric": "converted", "value": 1, "version": v2.number, "request_id": "abc"},
                   format="json")
    assert res.status_code == 201 and res.json()["version"] == v2.number
    before = Outcome.objects.count()
    for bad in ({"metric": "converted", "value": 1}, {"metric": "converted", "value": 1, "key": "k", "version": 1},
                {"metric": "converted", "value": "yes", "key": "k"}, {"metric": "converted", "value": 1,
                                                                     "version": 99},
                {"value": 1, "key": "k"}):
        _error(api.post(url, bad, format="json"), 400)
    assert Outcome.objects.count() == before
    body = api.get(url).json()
    assert body["deployment"] == pk and len(body["arms"]) == 2
    (comparison,) = body["comparisons"]
    assert comparison["metric"] == "converted"
    assert comparison["kind"] == "binary"
    assert comparison["fixed_horizon"]["method"].startswith("two-proportion z-test")
    assert comparison["sequential"]["method"].startswith("mSPRT")
    sizes = {arm["name"]: arm["n"] for arm in comparison["arms"]}
    assert set(sizes) == {f"v{v1.number}", f"v{v2.number}"} and sum(sizes.values()) == 31
    assert all(n > 0 for n in sizes.values()) and "n=" in comparison["conclusion"]
    assert "outcomes" in api.get(f"/api/v1/deployments/{pk}").json()["metrics"]
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    vapi = api_client_for(viewer)
    assert vapi.get(url).status_code == 200
    _error(vapi.post(url, {"metric": "converted", "value": 1, "version": v1.number}, format="json"), 403)


def test_outcomes_refused_for_non_ab(api, live):
    d = Deployment.objects.get()
    _error(api.post(f"/api/v1/deployments/{d.pk}/outcomes", {"metric": "m", "value": 1, "version": 1},
                    format="json"), 400)
    assert api.get(f"/api/v1/deployments/{d.pk}/outcomes").json()["comparisons"] == []


def test_list_query_counts_do_not_grow(api, live, owner, endpoint):
    v1, v2 = live
    api.get("/api/v1/environments")  # the token's first use writes its last-used time

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(url).status_code == 200
        return len(ctx.captured_queries)

    one = (count("/api/v1/deployments"), count("/api/v1/endpoints"), count("/api/v1/endpoints/churn-staging/history"))
    for number in (v2.number, v1.number, v2.number):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=number)
    services.endpoint_create(actor=owner, name="churn-two", environment=endpoint.environment,
                             model=endpoint.model)
    many = (count("/api/v1/deployments"), count("/api/v1/endpoints"), count("/api/v1/endpoints/churn-staging/history"))
    assert many == one
