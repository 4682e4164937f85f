"""Source validation (the CVE-2023-1177 line of bypasses): an allowlist checked as text, nothing read or fetched."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from registry import access
from registry.artifacts import sources
from registry.errors import InvalidInput
from registry.models import ModelVersion

LOGGED = "m-" + "0123456789abcdef" * 2

BAD = [
    "/etc/passwd", "file:///etc/passwd", "FILE:///etc/passwd", "file:/etc/passwd", "file://localhost/etc/passwd",
    "local:/etc", "C:\\models\\m.pkl", "C:/models/m.pkl", "\\\\server\\share\\m", "~/model", "../model", "./model",
    "model", "", " s3://bucket/x", "s3://bucket/x ", "s3://", "models:/", "runs:/", "mlflow-artifacts:/",
    "models:/x/../../etc", "runs:/abc/../../etc/passwd", "mlflow-artifacts:/1/../../etc",
    "runs:/abc/model?x=..", "runs:/abc/model?x=y", "runs:/abc/model#frag", "runs:/abc/model;x=y",
    "runs:/abc/model#/../..", "models:/x/1?..", "models:/x/1;..",
    "s3://bucket/a/../b", "s3://bucket/a?x=../../", "s3://bucket/a#/../", "s3://bucket/a;x=..", "s3://bucket/a?x=y",
    "mlflow-artifacts:/1/%2e%2e/etc", "mlflow-artifacts:/1/%252e%252e/etc", "s3://bucket/a/%2E%2E/b",
    "runs:/abc/%2e%2e%2f%2e%2e%2fetc", "runs:/abc/model%00.txt", "s3://bucket/%2561",
    "runs:/abc/model\x00.txt", "s3://bucket/a\x00", "runs:/abc/model\n", "s3://bucket/a\\..\\b",
    "mlflow-artifacts://evil.example.com/1/x", "mlflow-artifacts:///etc/passwd", "runs://abc/model",
    "models://profile@databricks/m/1", "runs:/abc//etc", "mlflow-artifacts:/1/./x", "runs:/a b/model",
    "http://169.254.169.254/latest/meta-data", "https://example.com/model.pkl", "hdfs://namenode/x", "dbfs:/x",
    "ftp://host/x", "s3://bucket//x", "models:/x", "models:/x/1/extra", "models:/x@", "models:/m-123",
    "x" * 3000,
]
GOOD = [
    "s3://bucket/path/to/model", "s3://bucket/model.pkl", "gs://bucket/m", "wasbs://c@acct.blob.core.windows.net/m",
    "models:/churn/1", "models:/churn/latest", "models:/churn/Production", "models:/churn@champion",
    f"models:/{LOGGED}", "runs:/0123abcd/model", "runs:/0123abcd", "runs:/0123abcd/model/sub/file.pkl",
    "mlflow-artifacts:/1/0123abcd/artifacts/model", "mlflow-artifacts:/registry/3/2",
]


@pytest.mark.parametrize("source", BAD)
def test_bad_sources_are_refused(source):
    with pytest.raises(InvalidInput):
        sources.validate_source(source)


@pytest.mark.parametrize("source", GOOD)
def test_good_sources_are_returned_unchanged(source):
    assert sources.validate_source(source) == source


def test_configured_prefixes_narrow_the_object_stores(settings):
    settings.STRATUM_ALLOWED_SOURCE_PREFIXES = ["s3://team-models/", "file:///", "/"]
    assert sources.validate_source("s3://team-models/churn/1") == "s3://team-models/churn/1"
    for source in ("s3://other-bucket/x", "gs://bucket/x", "file:///etc/passwd", "/etc/passwd"):
        with pytest.raises(InvalidInput):
            sources.validate_source(source)


def test_prompt_tags_cannot_skip_validation():
    for key in ("mlflow.prompt.is_prompt", "MLflow.Prompt.text"):
        with pytest.raises(InvalidInput):
            sources.check_tags([key])
    sources.check_tags(["team", "mlflow.source.name"])


@pytest.fixture
def api(owner, registered_model):
    _, raw = access.token_create(user=owner, actor=owner, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["/etc/passwd", "file:///etc/passwd", "runs:/abc/model?x=../..",
                                    "mlflow-artifacts:/1/%2e%2e/%2e%2e/etc", "s3://b/a;x=..", "runs:/abc/m\x00"])
def test_mlflow_create_refuses_bad_sources_and_writes_nothing(api, source, monkeypatch):
    opened: list[str] = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    response = api.post("/api/2.0/mlflow/model-versions/create", {"name": "churn", "source": source}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()
    assert not [p for p in opened if "etc" in p]


@pytest.mark.django_db
def test_prompt_tags_and_native_api_are_checked_too(api):
    response = api.post("/api/2.0/mlflow/model-versions/create", {
        "name": "churn", "source": "/etc/passwd", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
        format="json")
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    response = api.post("/api/2.0/mlflow/registered-models/create", {
        "name": "prompty", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]}, format="json")
    assert response.status_code == 400
    response = api.post("/api/2.0/mlflow/registered-models/set-tag", {
        "name": "churn", "key": "mlflow.prompt.is_prompt", "value": "true"}, format="json")
    assert response.status_code == 400
    native = api.post("/api/v1/models/churn/versions", {"source_uri": "file:///etc/passwd"}, format="json")
    assert native.status_code == 400 and native.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()
    ok = api.post("/api/2.0/mlflow/model-versions/create", {"name": "churn", "source": "s3://bucket/a/model"},
                  format="json")
    assert ok.status_code == 200 and ok.json()["model_version"]["source"] == "s3://bucket/a/model"
    assert ModelVersion.objects.get().source_uri == "s3://bucket/a/model"


@pytest.mark.django_db
def test_a_run_held_elsewhere_is_external_provenance_until_imported(api, owner, client):
    from registry.lineage import services as lineage_services
    from registry.lineage.models import LineageEdge, NodeKind
    from registry.models import Experiment, Run

    run_id = "a" * 32
    source = f"runs:/{run_id}/model"
    mismatch = api.post("/api/2.0/mlflow/model-versions/create",
                        {"name": "churn", "source": source, "run_id": "b" * 32}, format="json")
    assert mismatch.status_code == 400  # MLflow's rule: run_id is the run the source names
    assert "must identify the resource that contains the source" in mismatch.json()["message"]

    response = api.post("/api/2.0/mlflow/model-versions/create", {"name": "churn", "source": source,
                                                                  "run_id": run_id}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()["model_version"]
    assert (body["source"], body["run_id"], body["status"]) == (source, run_id, "READY")
    assert body["status_message"] == f"Run {run_id} is held elsewhere: not verified by Stratum."
    version = ModelVersion.objects.get()
    assert not version.artifacts.exists() and version.params == {}  # nothing inherited from a run not seen
    edge = LineageEdge.objects.select_related("upstream").get(downstream__model_version=version)
    assert (edge.upstream.kind, edge.upstream.external_id, edge.upstream.model_id) == (
        NodeKind.EXTERNAL_RUN, run_id, version.model_id)
    searched = api.get("/api/2.0/mlflow/model-versions/search", {"filter": "name = 'churn'"}).json()
    assert searched["model_versions"][0]["status_message"] == body["status_message"]
    download = api.get("/api/2.0/mlflow/model-versions/get-download-uri", {"name": "churn", "version": "1"}).json()
    assert download == {"artifact_uri": source}  # the client fetches it from the tracking server that holds the run
    client.force_login(owner)
    assert "not verified by Stratum" in client.get("/models/churn/versions/1/").content.decode()
    lineage_page = client.get("/models/churn/versions/1/lineage/", follow=True)
    assert lineage_page.status_code == 200 and "not verified by Stratum" in lineage_page.content.decode()
    native = json.dumps(api.get("/api/v1/lineage/models/churn/versions/1").json())
    assert "external_run" in native and run_id in native
    version_json = api.get("/api/v1/models/churn/versions/1").json()
    assert (version_json["run_id"], version_json["run_verified"]) == (run_id, False)
    listed = api.get("/api/v1/models/churn/versions").json()["results"]
    assert [(v["version"], v["run_verified"]) for v in listed] == [(1, False)]

    # The run is imported later: the version's run is now Stratum's own, and the external edge goes.
    Run.objects.create(run_id=run_id, experiment=Experiment.objects.create(name="imported", owner=owner))
    lineage_services.lineage_fill_from_version(version)
    assert not LineageEdge.objects.filter(downstream__model_version=version).exists()
    got = api.get("/api/2.0/mlflow/model-versions/get", {"name": "churn", "version": "1"}).json()["model_version"]
    assert "status_message" not in got
    assert "not verified by Stratum" not in client.get("/models/churn/versions/1/").content.decode()
    assert api.get("/api/v1/models/churn/versions/1").json()["run_verified"] is True
