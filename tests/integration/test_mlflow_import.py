"""manage.py import_mlflow against a real `mlflow server` (SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command

from registry.artifacts.storage import blob_open
from registry.models import Alias, Artifact, ModelVersion, RegisteredModel
from tests.registry.mlflow_support import mlflow_server_process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch):
    """Start a stock MLflow server; yield its URL; stop it."""
    with mlflow_server_process(tmp_path) as url:
        for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        yield url
        import mlflow

        mlflow.set_registry_uri(None)
        mlflow.set_tracking_uri(None)


def test_import_copies_models_versions_and_artifacts_idempotently(mlflow_server, owner):
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    estimator = LogisticRegression().fit(X, [1, 0, 1, 0])
    mlflow.set_experiment("legacy")
    with mlflow.start_run() as run:
        mlflow.log_param("C", "1.0")
        mlflow.log_metric("auc", 0.8)
        info = mlflow.sklearn.log_model(estimator, name="model", registered_model_name="legacy-churn",
                                        pip_requirements=["scikit-learn"])
    client.update_registered_model("legacy-churn", description="Imported from MLflow")
    client.set_registered_model_tag("legacy-churn", "team", "ml")
    client.create_model_version("legacy-churn", "s3://bucket/legacy/2", run_id=run.info.run_id,
                                tags={"k": "v"}, description="second")
    client.create_model_version("legacy-churn", "s3://bucket/legacy/3")
    client.delete_model_version("legacy-churn", "3")  # a gap: numbers are kept, 3 is never reused
    client.transition_model_version_stage("legacy-churn", "1", "Production")
    client.set_registered_model_alias("legacy-churn", "champion", "1")
    client.create_registered_model("empty-model")

    out = io.StringIO()
    call_command("import_mlflow", tracking_uri=mlflow_server, owner="owner", stdout=out, stderr=io.StringIO())
    assert "2 models (2 new), 2 new versions (0 already imported)" in out.getvalue(), out.getvalue()

    model = RegisteredModel.objects.get(name="legacy-churn")
    assert model.owner == owner and model.description == "Imported from MLflow"
    assert dict(model.tags.values_list("key", "value")) == {"team": "ml"}
    v1, v2 = ModelVersion.objects.filter(model=model).order_by("number")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.stage == "Production" and v1.run_id == run.info.run_id and v1.source_uri == f"models:/{info.model_id}"
    assert v1.params == {"C": "1.0"} and v1.metrics == {"auc": 0.8}
    assert v2.description == "second" and v2.source_uri == "s3://bucket/legacy/2" and v2.run_id == run.info.run_id
    assert v2.tags.get(key="k").value == "v"
    assert Alias.objects.get(model=model, name="champion").version == v1
    files = {a.path: a for a in Artifact.objects.filter(version=v1)}
    assert {"MLmodel", "requirements.txt"} <= set(files)
    with blob_open(files["requirements.txt"].blob) as fh:
        assert b"scikit-learn" in fh.read()
    assert not Artifact.objects.filter(version=v2).exists()  # s3:// files are not fetched
    assert RegisteredModel.objects.filter(name="empty-model").exists()

    # Second run: nothing new, nothing duplicated; a new MLflow version is picked up.
    client.create_model_version("legacy-churn", "s3://bucket/legacy/4")
    out = io.StringIO()
    call_command("import_mlflow", tracking_uri=mlflow_server, owner="owner", stdout=out, stderr=io.StringIO())
    assert "2 models (0 new), 1 new versions (2 already imported)" in out.getvalue(), out.getvalue()
    assert list(ModelVersion.objects.filter(model=model).values_list("number", flat=True).order_by("number")) == [
        1, 2, 4]
    out = io.StringIO()
    call_command("import_mlflow", tracking_uri=mlflow_server, owner="owner", stdout=out, stderr=io.StringIO())
    assert "0 new versions (3 already imported)" in out.getvalue()
    assert Artifact.objects.filter(version__model=model).count() == len(files)
