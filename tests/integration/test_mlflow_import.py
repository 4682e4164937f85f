"""manage.py import_mlflow against a real `mlflow server` (SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command

from registry import services
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


def test_import_copies_runs_and_links_versions_whose_run_was_held_elsewhere(mlflow_server, owner, client,
                                                                             api_client_for):
    """A version first imported without its run is external provenance (not verified); importing the run links it:
    params, metrics and datasets come in, lineage loses the external node, one event records it, every route stops
    saying "not verified". Imports stay idempotent, and a version registered later from the run is verified at once."""
    import mlflow
    import numpy as np

    from governance.models import AuditEvent
    from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
    from registry.models import Run, RunInput, RunMetric, RunParam, RunTag

    mlflow.set_tracking_uri(mlflow_server)
    remote = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    mlflow.set_experiment("trained-elsewhere")
    with mlflow.start_run(run_name="trainer") as run:
        mlflow.log_param("C", "0.5")
        for step, loss in enumerate([0.9, 0.5, 0.2]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("team", "fraud")
        mlflow.log_input(mlflow.data.from_numpy(np.array([[0.0, 1.0]]), source="s3://data/train.npy", name="train"),
                         context="training")
    with mlflow.start_run(run_name="unregistered") as other:
        mlflow.log_param("C", "2.0")
    run_id = run.info.run_id
    remote.create_registered_model("fraud")
    remote.create_model_version("fraud", "s3://bucket/fraud/1", run_id=run_id)

    def command(**options):
        out = io.StringIO()
        call_command("import_mlflow", tracking_uri=mlflow_server, owner="owner", stdout=out, stderr=io.StringIO(),
                     **options)
        return out.getvalue()

    api = api_client_for(owner)
    client.force_login(owner)

    def verified() -> tuple[bool, str | None, bool]:
        native = api.get("/api/v1/models/fraud/versions/1").json()["run_verified"]
        message = api.get("/api/2.0/mlflow/model-versions/get", {"name": "fraud", "version": "1"}).json()[
            "model_version"].get("status_message")
        page = "not verified by Stratum" in client.get("/models/fraud/versions/1/").content.decode()
        return native, message, page

    # 1. Registry only: the version's run is held elsewhere.
    out = command(no_runs=True)
    assert "Runs: 0 copied (0 new); 0 versions linked" in out, out
    version = ModelVersion.objects.get(model__name="fraud", number=1)
    assert not Run.objects.filter(pk=run_id).exists()
    external = LineageEdge.objects.select_related("upstream").get(downstream__model_version=version).upstream
    assert (external.kind, external.external_id) == (NodeKind.EXTERNAL_RUN, run_id)
    assert verified() == (False, f"Run {run_id} is held elsewhere: not verified by Stratum.", True)

    # 2. With runs (the default): the run comes in and the version is linked to it, audited once.
    out = command()
    assert "Runs: 1 copied (1 new); 1 versions linked to their runs." in out, out
    held = Run.objects.select_related("experiment").get(pk=run_id)
    assert (held.experiment.name, held.name, held.status, held.user) == ("trained-elsewhere", "trainer", "FINISHED",
                                                                         owner)
    assert dict(RunParam.objects.filter(run=held).values_list("key", "value")) == {"C": "0.5"}
    assert list(RunMetric.objects.filter(run=held, key="loss").order_by("step").values_list("value", flat=True)) == [
        0.9, 0.5, 0.2]
    assert RunTag.objects.get(run=held, key="team").value == "fraud"
    assert RunInput.objects.get(run=held).name == "train"
    version.refresh_from_db()
    assert version.params == {"C": "0.5"} and version.metrics == {"loss": 0.2}
    assert list(version.datasets.values_list("name", "uri", "role")) == [("train", "s3://data/train.npy", "train")]
    edges = LineageEdge.objects.filter(downstream__model_version=version).select_related("upstream")
    assert [(e.kind, e.upstream.kind, e.upstream.name) for e in edges] == [(EdgeKind.TRAINED_ON, NodeKind.DATASET,
                                                                            "train")]
    assert not LineageNode.objects.filter(kind=NodeKind.EXTERNAL_RUN).exists()
    linked = AuditEvent.objects.get(action="model_version.run_linked")
    assert linked.data["run_id"] == run_id and linked.data["datasets_added"] == ["train"]
    assert verified() == (True, None, False)
    searched = api.post("/api/2.0/mlflow/runs/search", {"experiment_ids": [str(held.experiment_id)]},
                        format="json").json()
    assert [r["info"]["run_id"] for r in searched["runs"]] == [run_id]

    # 3. Again, with the whole experiment: the other run comes; nothing is copied twice, nothing linked twice.
    out = command(experiment=["trained-elsewhere"])
    assert "Runs: 2 copied (1 new); 0 versions linked" in out, out
    assert Run.objects.get(pk=other.info.run_id).experiment_id == held.experiment_id
    assert RunMetric.objects.filter(run=held).count() == 3
    assert AuditEvent.objects.filter(action="model_version.run_linked").count() == 1
    assert AuditEvent.objects.filter(action="run.imported").count() == 2
    out = command(run_id=["f" * 32])
    assert "run ffffffffffffffffffffffffffffffff: not copied" in out, out

    # 4. A version registered later from the imported run is verified at once and inherits from it.
    later = services.version_create_from_source(model=version.model, actor=owner, source_uri=f"runs:/{run_id}/model")
    assert later.params == {"C": "0.5"} and later.metrics == {"loss": 0.2}
    assert not LineageEdge.objects.filter(downstream__model_version=later, upstream__kind=NodeKind.EXTERNAL_RUN
                                          ).exists()
    assert api.get(f"/api/v1/models/fraud/versions/{later.number}").json()["run_verified"] is True
