"""The stock MlflowClient's registry methods (map section 1) against a live Stratum server, with MLflow's shapes."""

from __future__ import annotations

import base64
import json
import os

import pytest
import requests

from registry.models import ModelVersion, RegisteredModel, Role
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_registry_client_method(mlflow_env, owner):  # noqa: F811
    from mlflow.exceptions import MlflowException

    client = mlflow_env(owner)

    rm = client.create_registered_model("churn", tags={"team": "ml"}, description="first")
    assert rm.name == "churn" and rm.tags == {"team": "ml"} and rm.description == "first"
    assert rm.creation_timestamp > 1_600_000_000_000  # milliseconds
    assert client.get_registered_model("churn").tags == {"team": "ml"}
    client.update_registered_model("churn", description="updated")
    assert client.get_registered_model("churn").description == "updated"
    client.set_registered_model_tag("churn", "owner", "alice")
    client.delete_registered_model_tag("churn", "team")
    assert client.get_registered_model("churn").tags == {"owner": "alice"}

    v1 = client.create_model_version("churn", "s3://bucket/churn/1", tags={"k": "v1"}, description="one")
    assert (v1.version, v1.status, v1.current_stage, v1.source) == ("1", "READY", "None", "s3://bucket/churn/1")
    v2 = client.create_model_version("churn", "s3://bucket/churn/2", run_id="abc123", tags={"k": "v2"})
    v3 = client.create_model_version("churn", "s3://bucket/churn/3")
    assert (v2.version, v2.run_id, v3.version) == ("2", "abc123", "3")

    got = client.get_model_version("churn", "1")
    assert got.description == "one" and got.tags == {"k": "v1"}
    assert [v.version for v in client.search_model_versions("tags.k = 'v2'")] == ["2"]
    client.update_model_version("churn", "1", description="uno")
    assert client.get_model_version("churn", "1").description == "uno"
    client.set_model_version_tag("churn", "1", "approved", "yes")
    client.delete_model_version_tag("churn", "1", "k")
    assert client.get_model_version("churn", "1").tags == {"approved": "yes"}

    assert client.transition_model_version_stage("churn", "1", "Production").current_stage == "Production"
    client.transition_model_version_stage("churn", "2", "Production", archive_existing_versions=True)
    assert client.get_model_version("churn", "1").current_stage == "Archived"
    client.transition_model_version_stage("churn", "3", "Staging")
    latest = {v.current_stage: v.version for v in client.get_latest_versions("churn")}
    assert latest == {"Staging": "3", "Production": "2", "Archived": "1"}
    assert [v.version for v in client.get_latest_versions("churn", stages=["Production"])] == ["2"]

    client.set_registered_model_alias("churn", "champion", "2")
    by_alias = client.get_model_version_by_alias("churn", "champion")
    assert by_alias.version == "2" and by_alias.aliases == ["champion"]
    assert client.get_registered_model("churn").aliases == {"champion": "2"}
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("churn", "v1", "1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("churn", "challenger", "99")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model_alias("churn", "champion")
    with pytest.raises(MlflowException) as err:
        client.get_model_version_by_alias("churn", "champion")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"

    assert client.get_model_version_download_uri("churn", "1") == "s3://bucket/churn/1"
    client.delete_model_version("churn", "3")
    with pytest.raises(MlflowException) as err:
        client.get_model_version("churn", "3")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.rename_registered_model("churn", "churn-v2")
    assert client.get_registered_model("churn-v2").name == "churn-v2"
    client.transition_model_version_stage("churn-v2", "2", "Archived")
    client.delete_registered_model("churn-v2")
    assert not RegisteredModel.objects.exists() and not ModelVersion.objects.exists()


def test_search_pagination_order_by_and_prompt_clause(mlflow_env, owner, live_server):  # noqa: F811
    client = mlflow_env(owner)
    for name in ["p-a", "p-b", "p-c", "p-d", "q-x"]:
        client.create_registered_model(name, tags={"team": "ml" if name != "p-d" else "ops"})
    for _ in range(5):
        client.create_model_version("p-a", "s3://bucket/p-a")

    page = client.search_registered_models(filter_string="name LIKE 'p-%'", order_by=["name DESC"], max_results=2)
    assert [m.name for m in page] == ["p-d", "p-c"] and page.token
    assert json.loads(base64.b64decode(page.token)) == {"offset": 2}
    page2 = client.search_registered_models(filter_string="name LIKE 'p-%'", order_by=["name DESC"],
                                            max_results=2, page_token=page.token)
    assert [m.name for m in page2] == ["p-b", "p-a"] and not page2.token  # the last page has no token
    assert {m.name for m in client.search_registered_models(filter_string="tags.team = 'ml'")} == {
        "p-a", "p-b", "p-c", "q-x"}
    assert len(client.search_registered_models()) == 5  # the client's own prompt clause matches every model
    found = client.search_registered_models(filter_string="name = 'p-a'")[0]
    assert [v.version for v in found.latest_versions] == ["5"]

    versions = client.search_model_versions("name='p-a'", max_results=2, order_by=["version_number DESC"])
    assert [v.version for v in versions] == ["5", "4"] and versions.token
    rest = client.search_model_versions("name='p-a'", max_results=10, order_by=["version_number DESC"],
                                        page_token=versions.token)
    assert [v.version for v in rest] == ["3", "2", "1"] and not rest.token
    assert [v.version for v in client.search_model_versions("name='p-a'", order_by=["version_number ASC"])][:2] == [
        "1", "2"]

    # Raw shapes: strings for versions, ms numbers, READY, no aliases in search results, errors as JSON 4xx.
    headers = {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    base = f"{live_server.url}/api/2.0/mlflow"
    body = requests.get(f"{base}/model-versions/search", params={"filter": "name='p-a'"}, headers=headers,
                        timeout=10).json()
    first = body["model_versions"][0]
    assert isinstance(first["version"], str) and isinstance(first["creation_timestamp"], int)
    assert first["status"] == "READY" and "aliases" not in first and first["description"] == ""
    bad = requests.get(f"{base}/registered-models/search", params={"max_results": "1001"}, headers=headers,
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad = requests.get(f"{base}/registered-models/search", params={"page_token": "!!"}, headers=headers, timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad = requests.get(f"{base}/registered-models/search", params={"filter": "nonsense ~ 1"}, headers=headers,
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad = requests.get(f"{base}/registered-models/search", params={"order_by": "bogus DESC"}, headers=headers,
                       timeout=10)
    assert bad.status_code == 400


def test_errors_are_mlflow_shaped_4xx(mlflow_env, owner, live_server):  # noqa: F811
    from mlflow.exceptions import MlflowException

    client = mlflow_env(owner)
    client.create_registered_model("x")
    client.create_model_version("x", "s3://bucket/x")
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("missing")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("x")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_model_version("x", "99")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    headers = {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    base = f"{live_server.url}/api/2.0/mlflow"
    cases = [
        ("GET", f"{base}/no-such-route", None, 404, "ENDPOINT_NOT_FOUND"),
        ("GET", f"{live_server.url}/api/2.0/nothing-here", None, 404, "ENDPOINT_NOT_FOUND"),
        ("POST", f"{base}/registered-models/create", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", f"{base}/registered-models/create", {"name": ["x"]}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", f"{base}/registered-models/create", {"name": "x"}, 400, "RESOURCE_ALREADY_EXISTS"),
        ("DELETE", f"{base}/registered-models/delete", {"name": "missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", f"{base}/model-versions/get", {"name": "x", "version": "abc"}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", f"{base}/model-versions/transition-stage", {"name": "x", "version": "1", "stage": "Prod"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ("POST", f"{base}/registered-models/get", {"name": "x"}, 405, "ENDPOINT_NOT_FOUND"),
    ]
    for method, url, payload, status, code in cases:
        kwargs = {"params": payload} if method == "GET" else {"json": payload}
        response = requests.request(method, url, headers=headers, timeout=10, **kwargs)
        assert response.status_code == status, (method, url, payload, response.content)
        assert response.json()["error_code"] == code and response.json()["message"], (url, response.json())
    malformed = requests.post(f"{base}/registered-models/create", data="{not json", headers={
        **headers, "Content-Type": "application/json"}, timeout=10)
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "MALFORMED_REQUEST"
    anonymous = requests.get(f"{base}/registered-models/get", params={"name": "x"}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHENTICATED"


def test_authorization_matches_the_native_api(mlflow_env, owner, make_user, grant, live_server):  # noqa: F811
    from mlflow.exceptions import MlflowException

    viewer, outsider = make_user("viewer"), make_user("stranger")
    owner_client = mlflow_env(owner)
    owner_client.create_registered_model("secret")
    owner_client.create_model_version("secret", "s3://bucket/secret/1")
    grant(RegisteredModel.objects.get(name="secret"), viewer, Role.VIEWER)

    viewer_client = mlflow_env(viewer)
    assert viewer_client.get_registered_model("secret").name == "secret"
    assert [v.version for v in viewer_client.search_model_versions("name='secret'")] == ["1"]
    with pytest.raises(MlflowException) as err:
        viewer_client.create_model_version("secret", "s3://bucket/secret/2")
    assert err.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as err:
        viewer_client.set_registered_model_alias("secret", "champion", "1")
    assert err.value.error_code == "PERMISSION_DENIED"

    outsider_client = mlflow_env(outsider)
    assert outsider_client.search_registered_models() == []
    assert outsider_client.search_model_versions("name='secret'") == []
    for call in (lambda: outsider_client.get_registered_model("secret"),
                 lambda: outsider_client.get_model_version("secret", "1"),
                 lambda: outsider_client.create_model_version("secret", "s3://bucket/x"),
                 lambda: outsider_client.delete_registered_model("secret")):
        with pytest.raises(MlflowException) as err:
            call()
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert ModelVersion.objects.count() == 1 and RegisteredModel.objects.filter(name="secret").exists()
