"""Hostile text through the real APIs: control characters, non-finite and out-of-range numbers, Unicode digits as
version references and look-alike model names are refused the same way on SQLite and PostgreSQL (never a 500)."""

from __future__ import annotations

import json
import math

import pytest

from registry import services
from registry.models import RegisteredModel, RunMetric

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow"
BIG = 2**63


def call(client, method: str, url: str, body=None):
    return getattr(client, method)(url, data=None if body is None else json.dumps(body),
                                   content_type="application/json")


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


@pytest.fixture
def fraud(owner, make_version):
    model = services.model_create(actor=owner, name="fraud")
    make_version(model)
    return model


# ------------------------------------------------------------------------------------ control characters


@pytest.mark.parametrize("url", [
    "/api/v1/models/fr%00aud",
    "/api/v1/models/fraud/versions/1/tags/a%00b",
    "/api/v1/models?filter=name%20%3D%20%27a%00%27",
    "/api/v1/models?stage=%01",
])
def test_a_nul_in_a_native_address_is_a_400_in_the_api_shape(api, fraud, url):
    response = api.get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "control character" in response.json()["error"]["message"]


def test_a_nul_in_an_mlflow_query_is_a_400_in_mlflow_shape(api, fraud):
    response = api.get(f"{MLFLOW}/registered-models/get?name=fraud%00")
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_nul_in_a_page_address_is_a_readable_400(client, owner, fraud):
    client.force_login(owner)
    response = client.get("/models/fr%00aud/")
    assert response.status_code == 400
    assert "control character" in response.content.decode() and "<html" in response.content.decode().lower()


def test_a_multi_line_filter_is_still_accepted(api, fraud):
    response = api.get("/api/v1/models?filter=name%20%3D%20%27fraud%27%0AAND%09name%20LIKE%20%27f%25%27")
    assert response.status_code == 200 and [m["name"] for m in response.json()["results"]] == ["fraud"]


def test_a_nul_in_a_posted_filter_is_a_400(api, fraud):
    response = call(api, "post", f"{MLFLOW}/registered-models/search", {"filter": "name = 'a\x00'"})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("body", [
    {"name": "m2", "description": "bad\x00text"},
    {"name": "m2", "description": "bell\x07"},
    {"name": "m2", "tags": {"team": "a\x00b"}},
    {"name": "m2", "tags": {"te\x85am": "x"}},  # a C1 control in a key
])
def test_control_characters_in_native_writes_are_400(api, body):
    response = call(api, "post", "/api/v1/models", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert not RegisteredModel.objects.filter(name="m2").exists()


def test_descriptions_keep_ordinary_whitespace(api):
    response = call(api, "post", "/api/v1/models", {"name": "m3", "description": "line one\n\tline two\r\n"})
    assert response.status_code == 201 and RegisteredModel.objects.get(name="m3").description.startswith("line one\n")


def test_control_characters_in_version_params_and_signature_are_400(api, fraud):
    for body in ({"params": {"lr": "0.1\x00"}}, {"signature": {"inputs": [{"name": "a\x00", "type": "double"}]}},
                 {"datasets": [{"name": "train\x00"}]}):
        response = call(api, "post", "/api/v1/models/fraud/versions", body)
        assert response.status_code == 400, (body, response.content)
    assert fraud.versions.count() == 1


def test_control_characters_in_mlflow_writes_are_400(api, fraud):
    assert call(api, "post", f"{MLFLOW}/registered-models/set-tag",
                {"name": "fraud", "key": "k", "value": "v\x00"}).status_code == 400
    assert call(api, "patch", f"{MLFLOW}/registered-models/update",
                {"name": "fraud", "description": "d\x00"}).status_code == 400
    exp = call(api, "post", f"{MLFLOW}/experiments/create", {"name": "e\x00"})
    assert exp.status_code == 400 and exp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    exp_id = call(api, "post", f"{MLFLOW}/experiments/create", {"name": "e"}).json()["experiment_id"]
    run_id = call(api, "post", f"{MLFLOW}/runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    assert call(api, "post", f"{MLFLOW}/runs/log-parameter",
                {"run_id": run_id, "key": "p", "value": "x\x00"}).status_code == 400
    assert call(api, "post", f"{MLFLOW}/runs/set-tag",
                {"run_id": run_id, "key": "t", "value": "\x00"}).status_code == 400
    inputs = {"run_id": run_id, "datasets": [{"dataset": {"name": "d", "digest": "1"},
                                              "tags": [{"key": "mlflow.data.context", "value": "tr\x00ain"}]}]}
    assert call(api, "post", f"{MLFLOW}/runs/log-inputs", inputs).status_code == 400


def test_lineage_node_text_json_and_row_count_are_checked(api, fraud):
    for body in ({"kind": "dataset", "name": "d", "properties": {"k": "v\x00"}},
                 {"kind": "dataset", "name": "d", "uri": "s3://x\ny"},
                 {"kind": "dataset", "name": "d", "row_count": BIG}):
        response = call(api, "post", "/api/v1/lineage/nodes", body)
        assert response.status_code == 400, (body, response.content)
        assert response.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    ok = call(api, "post", "/api/v1/lineage/nodes", {"kind": "dataset", "name": "d", "row_count": BIG - 1})
    assert ok.status_code == 201


# ---------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("text", ["metrics.auc > 1e400", "metrics.auc > -1e400", "version_number > 1e999",
                                  "metrics.auc = 'NaN'", "metrics.auc < 'inf'", f"version_number = {BIG}",
                                  "metrics.auc IN (1, 1e400)"])
def test_non_finite_or_out_of_range_numbers_in_filters_are_400(api, fraud, text):
    response = api.get("/api/v1/models/fraud/versions", {"filter": text})
    assert response.status_code == 400, response.content
    mlflow = call(api, "post", f"{MLFLOW}/model-versions/search", {"filter": text})
    assert mlflow.status_code == 400 and mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_unicode_digit_in_a_filter_is_not_a_number(api, fraud):
    assert api.get("/api/v1/models/fraud/versions", {"filter": "version_number = \u0661"}).status_code == 400


def test_non_finite_or_huge_version_metrics_are_400(api, fraud):
    for metrics in ({"auc": "NaN"}, {"auc": "Infinity"}, {"auc": 10**400}):
        response = api.post("/api/v1/models/fraud/versions", data=json.dumps({"metrics": metrics}),
                            content_type="application/json")
        assert response.status_code == 400, (metrics, response.content)


def _run(api):
    exp_id = call(api, "post", f"{MLFLOW}/experiments/create", {"name": "exp"}).json()["experiment_id"]
    return call(api, "post", f"{MLFLOW}/runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]


def test_nan_and_infinite_metrics_are_logged_and_read_back_as_mlflow_does(api):
    run_id = _run(api)
    for step, value in enumerate(["NaN", "Infinity", "-Infinity", 0.5]):
        response = call(api, "post", f"{MLFLOW}/runs/log-metric",
                        {"run_id": run_id, "key": "loss", "value": value, "timestamp": 1, "step": step})
        assert response.status_code == 200, response.content
    # Re-logging the same NaN point stores it once, as every other point.
    call(api, "post", f"{MLFLOW}/runs/log-metric", {"run_id": run_id, "key": "loss", "value": "NaN", "timestamp": 1,
                                                    "step": 0})
    history = api.get(f"{MLFLOW}/metrics/get-history", {"run_id": run_id, "metric_key": "loss"}).json()["metrics"]
    assert [m["value"] for m in history] == ["NaN", "Infinity", "-Infinity", 0.5]
    assert math.isnan(RunMetric.objects.get(run_id=run_id, step=0).value)


@pytest.mark.parametrize("point", [{"value": 1, "timestamp": BIG}, {"value": 1, "timestamp": 1, "step": BIG},
                                   {"value": 1, "timestamp": "Infinity"}, {"value": 10**400, "timestamp": 1},
                                   {"value": 1, "timestamp": "\u0661"}])
def test_out_of_range_metric_points_are_400(api, point):
    response = call(api, "post", f"{MLFLOW}/runs/log-metric", {"run_id": _run(api), "key": "m", **point})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("args", [{"max_results": str(BIG)}, {"max_results": "\u0661"}])
def test_out_of_range_max_results_are_400(api, args):
    assert api.get(f"{MLFLOW}/registered-models/search", args).status_code == 400


# ----------------------------------------------------------------------------------- version references


@pytest.mark.parametrize("ref", ["\u00b3", "\u0661", "v\u0661", "\uff11"])
def test_unicode_digits_name_no_version(api, fraud, ref):
    response = api.get(f"/api/v1/models/fraud/versions/{ref}")
    assert response.status_code in (400, 404), response.content
    assert "error" in response.json()


@pytest.mark.parametrize("version", ["\u00b3", "\u0661", str(BIG)])
def test_mlflow_version_arguments_are_ascii_in_range(api, fraud, version):
    response = api.get(f"{MLFLOW}/model-versions/get", {"name": "fraud", "version": version})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert api.get(f"{MLFLOW}/model-versions/get", {"name": "fraud", "version": "1"}).status_code == 200


def test_a_negative_mlflow_version_is_not_found_as_in_mlflow(api, fraud):
    response = api.get(f"{MLFLOW}/model-versions/get", {"name": "fraud", "version": "-1"})
    assert response.status_code == 404
    assert response.json()["message"] == "Model Version (name=fraud, version=-1) not found"


def test_an_out_of_range_version_number_is_400_natively(api, fraud):
    assert api.get(f"/api/v1/models/fraud/versions/{BIG}").status_code == 400
    assert api.get(f"/api/v1/models/fraud/versions/{BIG - 1}").status_code == 404


def test_a_huge_version_in_a_page_address_is_not_found(client, owner, fraud):
    client.force_login(owner)
    assert client.get(f"/models/fraud/versions/{BIG}/").status_code == 404


# ---------------------------------------------------------------------------------------- model names


@pytest.mark.parametrize("name", ["fr\u0430ud", "\uff46\uff52\uff41\uff55\uff44", "FRAUD", "Fraud", "fr\u0430UD"])
def test_look_alike_names_are_refused_natively(api, fraud, name):
    response = call(api, "post", "/api/v1/models", {"name": name})
    assert response.status_code == 409, response.content
    assert "confused" in response.json()["error"]["message"] or "exists" in response.json()["error"]["message"]
    assert RegisteredModel.objects.count() == 1


def test_look_alike_names_are_refused_by_mlflow_create_and_rename(api, fraud):
    created = call(api, "post", f"{MLFLOW}/registered-models/create", {"name": "fraud-\u0456"})
    assert created.status_code == 201 or created.status_code == 200
    again = call(api, "post", f"{MLFLOW}/registered-models/create", {"name": "Fraud-i"})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"  # MLflow's 400
    renamed = call(api, "post", f"{MLFLOW}/registered-models/rename",
                   {"name": "fraud-\u0456", "new_name": "fr\u0430ud"})
    assert renamed.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    # Renaming a model to a case variant of its own name is allowed: it is the only one with that skeleton.
    assert call(api, "post", f"{MLFLOW}/registered-models/rename",
                {"name": "fraud", "new_name": "Fraud"}).status_code == 200


def test_digit_one_and_letter_l_are_confusable(owner, fraud):
    services.model_create(actor=owner, name="churn-1")
    for name in ("churn-l", "churn-I", "chum-1"):
        with pytest.raises(services.AlreadyExists):
            services.model_create(actor=owner, name=name)


def test_fullwidth_names_are_stored_normalised(api):
    response = call(api, "post", "/api/v1/models", {"name": "\uff33\uff43\uff4f\uff52\uff45\uff52"})
    assert response.status_code == 201 and response.json()["name"] == "Scorer"


def test_the_page_refuses_a_look_alike_name(client, owner, fraud):
    client.force_login(owner)
    response = client.post("/models/new/", {"name": "fr\u0430ud"})
    assert response.status_code in (200, 400, 409)
    assert "confused" in response.content.decode() and RegisteredModel.objects.count() == 1


@pytest.mark.parametrize("name", [123, 1.5, True, ["fraud"], {"a": 1}])
def test_mlflow_refuses_a_name_that_is_not_a_string(api, fraud, name):
    for url, body in ((f"{MLFLOW}/registered-models/create", {"name": name}),
                      (f"{MLFLOW}/registered-models/get", {"name": name}),
                      (f"{MLFLOW}/registered-models/rename", {"name": "fraud", "new_name": name})):
        method = "get" if url.endswith("/get") else "post"
        response = call(api, method, url, body) if method == "post" else api.get(url, {"name": json.dumps(name)})
        if method == "get":
            assert response.status_code == 404  # a query string is always text: no such model
            continue
        assert response.status_code == 400, (url, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"fraud"}


def test_a_page_token_beyond_any_row_is_400(api):
    import base64
    token = base64.b64encode(json.dumps({"offset": BIG}).encode()).decode()
    response = api.get(f"{MLFLOW}/registered-models/search", {"page_token": token})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
