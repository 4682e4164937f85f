"""Importing a run under its own id, and linking a version whose run was held elsewhere once Stratum holds it."""

from __future__ import annotations

import pytest

from governance.models import AuditEvent
from registry import services
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.lineage.models import LineageEdge, LineageNode, NodeKind
from registry.models import RunMetric
from registry.tracking import experiments, provenance, runs

pytestmark = pytest.mark.django_db

RUN_ID = "a" * 32
INFO = {"run_name": "trainer", "status": "FINISHED", "start_time": 1000, "end_time": 2000}
POINTS = [{"key": "auc", "value": 0.7, "timestamp": 1, "step": 0}, {"key": "auc", "value": "NaN", "timestamp": 2,
                                                                    "step": 1},
          {"key": "auc", "value": 0.9, "timestamp": 3, "step": 2}]
INPUTS = [{"dataset": {"name": "train", "digest": "d1", "source_type": "s3",
                       "source": '{"uri": "s3://data/train.csv"}'},
           "tags": [{"key": "mlflow.data.context", "value": "training"}]}]


def _import(owner, exp, **changes):
    fields = {"actor": owner, "experiment": exp, "run_id": RUN_ID, "info": INFO, "params": [("C", "1.0")],
              "tags": [("team", "ml")], "metrics": POINTS, "inputs": INPUTS, "origin": "http://mlflow"}
    return runs.run_import(**{**fields, **changes})


def test_run_import_is_idempotent_and_audited_once(owner):
    exp, created = experiments.experiment_for_import(actor=owner, name="elsewhere", tags={"k": "v"})
    assert created and exp.tags == {"k": "v"}
    assert experiments.experiment_for_import(actor=owner, name="elsewhere") == (exp, False)
    run, created = _import(owner, exp)
    assert created and (run.name, run.status, run.end_time) == ("trainer", "FINISHED", 2000)
    again, created = _import(owner, exp, tags=[("team", "fraud")], metrics=[*POINTS, {"key": "auc", "value": 1.0,
                                                                                     "timestamp": 4, "step": 3}])
    assert not created and again.pk == run.pk
    assert RunMetric.objects.filter(run=run).count() == 4  # the NaN point included, nothing twice
    assert run.tags.get(key="team").value == "fraud"
    assert AuditEvent.objects.filter(action="run.imported").count() == 1
    with pytest.raises(InvalidInput, match="Changing param values"):
        _import(owner, exp, params=[("C", "2.0")])
    other = experiments.experiment_create(actor=owner, name="other")
    with pytest.raises(AlreadyExists, match="another experiment"):
        _import(owner, other)
    with pytest.raises(InvalidInput, match="Run id"):
        _import(owner, exp, run_id="../x")


def test_run_import_refuses_an_experiment_the_actor_cannot_see(owner, make_user):
    theirs = experiments.experiment_create(actor=make_user("other"), name="theirs")
    with pytest.raises(NotFound):
        _import(owner, theirs)


def test_link_takes_the_run_provenance_and_drops_the_external_node(owner, outsider):
    model = services.model_create(actor=owner, name="churn")
    version = services.version_create_from_source(model=model, actor=owner, source_uri=f"runs:/{RUN_ID}/model")
    assert LineageNode.objects.filter(kind=NodeKind.EXTERNAL_RUN, external_id=RUN_ID).exists()
    assert list(provenance.versions_awaiting_run()) == []  # the run is not held yet
    exp, _ = experiments.experiment_for_import(actor=owner, name="elsewhere")
    _import(owner, exp)
    assert list(provenance.versions_awaiting_run()) == [version]
    with pytest.raises(NotFound):  # an outsider learns nothing about the model
        provenance.version_run_link(version=version, actor=outsider)

    assert provenance.version_run_link(version=version, actor=owner) is True
    version.refresh_from_db()
    assert version.params == {"C": "1.0"} and version.metrics == {"auc": 0.9}
    assert list(version.datasets.values_list("name", "uri", "digest", "role")) == [
        ("train", "s3://data/train.csv", "d1", "train")]
    upstream = LineageEdge.objects.filter(downstream__model_version=version).values_list("upstream__kind", flat=True)
    assert list(upstream) == [NodeKind.DATASET]
    assert not LineageNode.objects.filter(kind=NodeKind.EXTERNAL_RUN).exists()
    event = AuditEvent.objects.get(action="model_version.run_linked")
    assert (event.data["run_id"], event.data["params_added"], event.data["metrics_added"]) == (RUN_ID, ["C"],
                                                                                               ["auc"])
    assert provenance.version_run_link(version=version, actor=owner) is False  # nothing left to link
    assert list(provenance.versions_awaiting_run()) == []
    assert AuditEvent.objects.filter(action="model_version.run_linked").count() == 1


def test_link_brings_in_the_runs_feature_sets(owner):
    model = services.model_create(actor=owner, name="churn")
    version = services.version_create_from_source(model=model, actor=owner, source_uri=f"runs:/{RUN_ID}/model")
    features = {"dataset": {"name": "churn-features", "digest": "f1", "source_type": "s3",
                            "source": '{"uri": "s3://data/features.parquet"}'},
                "tags": [{"key": "mlflow.data.context", "value": "features"},
                         {"key": "stratum.version", "value": "3"},
                         {"key": "stratum.derived_from", "value": "customers@2024-05"}]}
    exp, _ = experiments.experiment_for_import(actor=owner, name="elsewhere")
    _import(owner, exp, inputs=[*INPUTS, features])
    assert provenance.version_run_link(version=version, actor=owner) is True
    fs = LineageNode.objects.get(kind=NodeKind.FEATURE_SET, name="churn-features", version="3")
    assert LineageEdge.objects.filter(upstream=fs, downstream__model_version=version, kind="uses_features").exists()
    assert LineageEdge.objects.filter(upstream__name="customers", upstream__version="2024-05", downstream=fs,
                                      kind="derived_from").exists()
    event = AuditEvent.objects.get(action="model_version.run_linked")
    assert [(f["name"], f["version"]) for f in event.data["feature_sets"]] == [("churn-features", "3")]


def test_run_import_copies_a_long_history_once(owner):
    exp, _ = experiments.experiment_for_import(actor=owner, name="long")
    history = [{"key": "loss", "value": 1 / (i + 1), "timestamp": i, "step": i} for i in range(2500)]
    _import(owner, exp, metrics=history)
    _import(owner, exp, metrics=history)
    assert RunMetric.objects.filter(run_id=RUN_ID).count() == 2500
