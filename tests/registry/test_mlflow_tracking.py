"""Training code logs and registers through the stock mlflow client; models load back with mlflow.pyfunc."""

from __future__ import annotations

import pytest

from registry.models import (
    Artifact,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    Role,
    Run,
    RunMetric,
    TrackedArtifact,
)
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trained():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def test_log_register_and_load_end_to_end(mlflow_env, owner, make_user, grant, trained, client):  # noqa: F811
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    estimator, X = trained
    mlflow_client = mlflow_env(owner)
    mlflow.set_experiment("churn-training")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("auc", 0.5, step=0)
        mlflow.log_metric("auc", 0.91, step=1)
        mlflow_client.log_batch(run_id, metrics=[Metric("loss", 0.2, 1_700_000_000_000, 3)],
                         params=[Param("penalty", "l2")], tags=[RunTag("team", "ml")])
        mlflow.log_input(mlflow.data.from_numpy(X, name="train-set"), context="training")
        info = mlflow.sklearn.log_model(estimator, name="model", registered_model_name="churn",
                                        pip_requirements=["scikit-learn"], input_example=X[:2])

    # The run, its metric history and the logged model's files are in Stratum's tables and blob store.
    stored = Run.objects.get(pk=run_id)
    assert stored.status == "FINISHED" and stored.experiment.name == "churn-training" and stored.user == owner
    assert list(RunMetric.objects.filter(run=stored, key="auc").values_list("step", "value")) == [(0, 0.5),
                                                                                                 (1, 0.91)]
    assert [m.value for m in mlflow_client.get_metric_history(run_id, "auc")] == [0.5, 0.91]
    fetched = mlflow_client.get_run(run_id)
    assert fetched.data.params == {"C": "1.0", "penalty": "l2"} and fetched.data.metrics["auc"] == 0.91
    assert fetched.data.tags["team"] == "ml" and fetched.inputs.dataset_inputs[0].dataset.name == "train-set"
    logged = LoggedModel.objects.get(pk=info.model_id)
    assert logged.status == "LOGGED_MODEL_READY" and logged.source_run_id == run_id
    tracked = {a.path: a for a in TrackedArtifact.objects.filter(logged_model=logged)}
    assert {"MLmodel", "requirements.txt"} <= set(tracked) and any(p.startswith("model.") for p in tracked)
    assert all(a.blob.size == a.size for a in tracked.values())

    # Version 1 (log_model with registered_model_name) carries run id, source, files, params and metrics.
    v1 = ModelVersion.objects.get(model__name="churn", number=1)
    assert v1.run_id == run_id and v1.source_uri == f"models:/{info.model_id}"
    assert v1.params == {"C": "1.0", "penalty": "l2"} and v1.metrics == {"auc": 0.91, "loss": 0.2}
    assert [d.name for d in v1.datasets.all()] == ["train-set"]
    files = {a.path: a.blob_id for a in Artifact.objects.filter(version=v1)}
    assert files == {path: a.blob_id for path, a in tracked.items()}  # same blobs, no byte copies

    client.force_login(owner)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert run_id in page and info.model_id in page and "penalty" in page
    assert "MLmodel" in client.get("/models/churn/versions/1/artifacts/").content.decode()

    # register_model("runs:/…/model") falls back to the run's logged model, as against MLflow.
    v2 = mlflow.register_model(f"runs:/{run_id}/model", "churn")
    assert v2.version == "2" and v2.run_id == run_id
    v2_row = ModelVersion.objects.get(model__name="churn", number=2)
    assert set(Artifact.objects.filter(version=v2_row).values_list("path", flat=True)) == set(files)
    assert v2_row.params == v1.params and v2_row.metrics == v1.metrics

    mlflow_client.set_registered_model_alias("churn", "champion", "1")
    expected = list(estimator.predict(X))
    for uri in ("models:/churn@champion", "models:/churn/2", "models:/churn/latest"):
        assert list(mlflow.pyfunc.load_model(uri).predict(X)) == expected, uri
    assert mlflow_client.get_model_version_download_uri("churn", "1").startswith("mlflow-artifacts:/registry/")

    # A viewer's client loads the model but cannot register; an outsider sees nothing.
    model = RegisteredModel.objects.get(name="churn")
    viewer, outsider = make_user("viewer"), make_user("stranger")
    grant(model, viewer, Role.VIEWER)
    viewer_client = mlflow_env(viewer)
    assert list(mlflow.pyfunc.load_model("models:/churn@champion").predict(X)) == expected
    with pytest.raises(MlflowException) as err:
        viewer_client.create_model_version("churn", f"models:/{info.model_id}")
    assert err.value.error_code == "PERMISSION_DENIED"
    mlflow_env(outsider)
    with pytest.raises(MlflowException) as err:
        mlflow.pyfunc.load_model("models:/churn@champion")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert ModelVersion.objects.filter(model=model).count() == 2


def test_log_model_without_a_run_and_missing_artifacts(mlflow_env, owner, trained, live_server):  # noqa: F811
    import os

    import mlflow
    import mlflow.sklearn
    import requests

    estimator, _ = trained
    mlflow_env(owner)
    mlflow.set_experiment("norun")
    info = mlflow.sklearn.log_model(estimator, name="norun", pip_requirements=["scikit-learn"])
    version = mlflow.register_model(info.model_uri, "norun-model")
    row = ModelVersion.objects.get(model__name="norun-model", number=int(version.version))
    assert row.run_id == "" and row.source_uri == info.model_uri and row.artifacts.count() >= 3

    headers = {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    base = f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts"
    exp_id = LoggedModel.objects.get(pk=info.model_id).experiment_id
    root = f"{exp_id}/models/{info.model_id}/artifacts"
    listing = requests.get(base, params={"path": root}, headers=headers, timeout=10).json()
    assert {"path": "MLmodel", "is_dir": False} .items() <= next(
        f for f in listing["files"] if f["path"] == "MLmodel").items()
    assert requests.get(base, params={"path": f"{root}/MLmodel"}, headers=headers, timeout=10).json() == {}
    missing = requests.get(f"{base}/{root}/nope", headers=headers, timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    escape = requests.put(f"{base}/{root}/..%2F..%2Fetc", data=b"x", headers=headers, timeout=10)
    assert escape.status_code in (400, 404) and "error_code" in escape.json()
    read_only = requests.put(f"{base}/registry/{row.model_id}/{row.number}/MLmodel", data=b"x", headers=headers,
                             timeout=10)
    assert read_only.status_code == 400
