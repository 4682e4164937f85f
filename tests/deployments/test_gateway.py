"""The serving gateway: authentication and scopes, input layouts, bad input, recording, caching, rate limits."""

from __future__ import annotations

import json

import pytest

from deployments import services, serving
from deployments.models import PredictionSample, TrafficStat
from registry import access as registry_access
from registry.models import Role

pytestmark = pytest.mark.django_db

ROW = [5.1, 3.5, 1.4, 0.2]
NAME = "churn-staging"


@pytest.fixture
def live(servable_version, registered_model, endpoint, owner):
    version = servable_version(registered_model)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    return version


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_predictions_carry_the_version_and_a_request_id(live, predict):
    response = predict(NAME, {"rows": [ROW, [6.7, 3.0, 5.2, 2.3]]})
    body = response.json()
    assert response.status_code == 200
    assert body["version"] == live.number and body["model"] == "churn" and body["endpoint"] == NAME
    assert body["predictions"] == [0, 2] and len(body["probabilities"]) == 2
    assert body["labels"] == ["a", "b", "c"]
    assert response["X-Request-Id"] == body["request_id"] and response["X-Stratum-Version"] == str(live.number)


@pytest.mark.parametrize("body", [
    {"rows": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]},
    {"inputs": {"f0": [5.1], "f1": [3.5], "f2": [1.4], "f3": [0.2]}},
    {"dataframe_split": {"columns": ["f3", "f2", "f1", "f0"], "data": [[0.2, 1.4, 3.5, 5.1]]}},
    {"dataframe_records": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]},
    {"instances": [ROW]},
])
def test_every_input_layout_gives_the_same_answer(live, predict, body):
    response = predict(NAME, body)
    assert response.status_code == 200, response.content
    assert response.json()["predictions"] == [0]


@pytest.mark.parametrize("body,status,fragment", [
    ("{not json", 400, "not valid JSON"),
    ([ROW], 400, "JSON object"),
    ({"rows": [[1.0, 2.0]]}, 400, "takes 4"),
    ({"rows": [[1.0, 2.0, "3", 4.0]]}, 400, "f2: expected a number, got a string"),
    ({"rows": [[1.0, 2.0, True, 4.0]]}, 400, "got a boolean"),
    ({"rows": [[1.0, None, 3.0, 4.0]]}, 400, "got null"),
    ('{"rows": [[NaN, 1, 2, 3]]}', 400, "finite"),
    ({"rows": [[1e39, 1, 2, 3]]}, 400, "finite"),
    ({"rows": []}, 400, "at least one row"),
    ({"rows": [ROW], "inputs": {}}, 400, "exactly one"),
    ({"inputs": {"f0": [1.0]}}, 400, "missing f1, f2, f3"),
    ({"inputs": {"f0": [1.0], "f1": [1.0, 2.0], "f2": [1.0], "f3": [1.0]}}, 400, "same length"),
    ({"rows": [{"f0": 1, "f1": 1, "f2": 1, "f3": 1, "ssn": 1}]}, 400, "unexpected ssn"),
    ({"dataframe_split": {"columns": ["f0"], "data": [[1.0, 2.0]]}}, 400, "one value per column"),
    ({"rows": [ROW] * 10_001}, 413, "split the batch"),
])
def test_bad_input_gets_a_clear_4xx(live, predict, body, status, fragment):
    response = predict(NAME, body)
    assert response.status_code == status, response.content
    assert fragment in response.json()["error"]["message"]
    serving.drain()
    assert not TrafficStat.objects.exists(), "refused input never reaches a model"


def test_oversized_bodies_get_413(live, predict, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert error(predict(NAME, {"rows": [ROW] * 100})) == (413, "PAYLOAD_TOO_LARGE")


def test_unknown_and_undeployed_endpoints(live, predict, endpoint, registered_model, owner):
    assert error(predict("nowhere", {"rows": [ROW]})) == (404, "RESOURCE_DOES_NOT_EXIST")
    services.endpoint_create(actor=owner, name="empty", environment=endpoint.environment, model=registered_model)
    assert error(predict("empty", {"rows": [ROW]})) == (409, "NOT_DEPLOYED")


def test_only_post_is_served(live, client, serving_token, owner):
    assert client.get(f"/serve/{NAME}/predict").status_code == 401
    response = client.get(f"/serve/{NAME}/predict", HTTP_AUTHORIZATION=f"Bearer {serving_token(owner)}")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_tokens_need_the_serve_scope_and_a_role(live, predict, owner, outsider, make_user, grant, registered_model,
                                                serving_token, client):
    no_token = client.post(f"/serve/{NAME}/predict", data=json.dumps({"rows": [ROW]}), content_type="application/json")
    assert error(no_token) == (401, "UNAUTHENTICATED") and no_token["WWW-Authenticate"].startswith("Bearer")
    _, api_token = registry_access.token_create(user=owner, actor=owner, name="api")
    assert error(predict(NAME, {"rows": [ROW]}, token=api_token)) == (401, "UNAUTHENTICATED")
    assert error(predict(NAME, {"rows": [ROW]}, token="stm_nope_nope")) == (401, "UNAUTHENTICATED")
    assert error(predict(NAME, {"rows": [ROW]}, token=serving_token(outsider))) == (404, "RESOURCE_DOES_NOT_EXIST")
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    assert predict(NAME, {"rows": [ROW]}, token=serving_token(viewer)).status_code == 200


def test_a_serving_token_cannot_use_the_api(serving_token, owner, client):
    response = client.get("/api/v1/models", HTTP_AUTHORIZATION=f"Bearer {serving_token(owner)}")
    assert response.status_code == 401


def test_revoked_tokens_stop_working_once_the_cache_expires(live, predict, owner, settings):
    settings.STRATUM_TOKEN_CACHE_SECONDS = 0
    token, raw = registry_access.token_create(user=owner, actor=owner, name="s", scopes=["serve"])
    assert predict(NAME, {"rows": [ROW]}, token=raw).status_code == 200
    registry_access.token_revoke(token=token, actor=owner)
    assert predict(NAME, {"rows": [ROW]}, token=raw).status_code == 401


def test_rate_limit_per_token(live, predict, settings, serving_token, owner):
    from django.core.cache import cache

    cache.clear()
    settings.STRATUM_SERVING_RATE_PER_MINUTE = 3
    other = serving_token(owner)
    assert [predict(NAME, {"rows": [ROW]}).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert predict(NAME, {"rows": [ROW]}, token=other).status_code == 200


def test_warm_requests_run_no_queries(live, predict, settings, django_assert_num_queries):
    settings.STRATUM_ROUTING_REFRESH_SECONDS = 60
    predict(NAME, {"rows": [ROW]})
    with django_assert_num_queries(0):
        assert predict(NAME, {"rows": [ROW]}).status_code == 200


def test_a_routing_change_reaches_the_gateway(live, predict, servable_version, registered_model, endpoint, owner):
    assert predict(NAME, {"rows": [ROW]}).json()["version"] == live.number
    newer = servable_version(registered_model)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=newer.number)
    assert predict(NAME, {"rows": [ROW]}).json()["version"] == newer.number


def test_requests_are_counted_and_sampled_in_batches(live, predict, settings):
    settings.STRATUM_SERVING_SAMPLE_RATE = 1.0
    for _ in range(3):
        predict(NAME, {"rows": [ROW, ROW]})
    assert not TrafficStat.objects.exists(), "nothing is written on the request path"
    serving.drain()
    stat = TrafficStat.objects.get()
    assert (stat.requests, stat.rows, stat.errors, stat.role) == (3, 6, 0, "live")
    assert stat.label_counts == {"0": 6} and sum(stat.latency_hist) == 3
    sample = PredictionSample.objects.first()
    assert sample.inputs == [pytest.approx(ROW)] * 2 and sample.outputs == [0, 0]
    assert PredictionSample.objects.count() == 3


def test_a_failed_flush_keeps_the_counts_for_the_next_one(live, predict, monkeypatch):
    predict(NAME, {"rows": [ROW]})

    def boom(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(TrafficStat.objects, "bulk_create", boom)
    with pytest.raises(RuntimeError):
        serving.recorder.flush()
    monkeypatch.undo()
    serving.recorder.flush()
    assert TrafficStat.objects.get().requests == 1
