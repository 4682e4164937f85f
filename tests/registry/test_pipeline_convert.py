"""The sandboxed loader and ONNX conversion: only scanned-clean files load, only in a limited child process."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from registry.lineage.models import EdgeKind, LineageEdge
from registry.models import Artifact, Job, JobState
from registry.pipeline.loader import load_in_sandbox, run_sandboxed
from tests.registry.pickle_corpus import MALICIOUS, benign_models, joblib_bytes, joblib_with_malicious_object

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_unpickling_here(monkeypatch):
    """Fail if this (parent) process unpickles anything: loads happen in the sandbox child only."""
    def refuse(*args, **kwargs):
        raise AssertionError("the parent process unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_sandbox_loads_clean_models_and_refuses_everything_off_the_allowlist(tmp_path):
    models = benign_models()
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(models["forest"]))
    (tmp_path / "m.joblib").write_bytes(joblib_bytes(models["logreg"]))
    (tmp_path / "evil.pkl").write_bytes(MALICIOUS["builtins.eval"][0])
    (tmp_path / "evil.joblib").write_bytes(joblib_with_malicious_object())
    ok = load_in_sandbox(str(tmp_path / "m.pkl"), "pickle")
    assert ok.ok and ok.data["class"].endswith("RandomForestClassifier") and ok.data["n_features_in"] == 4
    assert load_in_sandbox(str(tmp_path / "m.joblib"), "joblib").data["class"].endswith("LogisticRegression")
    for name, fmt in (("evil.pkl", "pickle"), ("evil.joblib", "joblib")):
        refused = load_in_sandbox(str(tmp_path / name), fmt)
        assert not refused.ok and "not on the allowlist" in refused.error


def test_sandbox_applies_cpu_and_memory_limits(tmp_path):
    probe = run_sandboxed("limits", cpu_seconds=7, memory_bytes=3 * 1024**3, file_bytes=5 * 1024**2, timeout=30)
    assert probe.ok and (probe.data["cpu"], probe.data["as"], probe.data["fsize"]) == (7, 3 * 1024**3, 5 * 1024**2)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(benign_models()["forest"]))
    starved = load_in_sandbox(str(tmp_path / "m.pkl"), "pickle", memory_bytes=64 * 1024**2)
    assert not starved.ok  # 64 MiB of address space is not enough to import numpy: the limit bites


def post_conversion(api_client_for, owner, hooks, path):
    with hooks(execute=True):
        return api_client_for(owner).post("/api/v1/models/churn/versions/1/conversions", {"path": path},
                                          format="json")


def test_convert_with_a_held_out_sample_records_parity_and_lineage(registered_model, owner, make_version,
                                                                   api_client_for, no_unpickling_here,
                                                                   django_capture_on_commit_callbacks):
    rows = np.random.default_rng(1).random((10, 4)).round(4).tolist()
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model, files={
            "model/model.pkl": pickle.dumps(benign_models()["logreg"]),
            "model/input_example.json": json.dumps({"columns": ["a", "b", "c", "d"], "data": rows}).encode()})
    response = post_conversion(api_client_for, owner, django_capture_on_commit_callbacks, "model/model.pkl")
    assert response.status_code == 202
    job = Job.objects.get(kind="convert")
    assert job.state == JobState.SUCCEEDED, job.error
    parity = job.result["parity"]
    assert parity["sample"] == "held-out sample" and parity["rows"] == 10
    assert parity["label_agreement"] == 1.0 and parity["max_abs_diff"] < 1e-4
    onnx = Artifact.objects.get(path="model/model.onnx")
    assert onnx.format == "onnx"
    report = Artifact.objects.get(path="model/model.onnx.parity.json")
    assert report.format == "json"
    edge = LineageEdge.objects.get(kind=EdgeKind.CONVERTED_FROM)
    assert edge.upstream.model_version_id == onnx.version_id
    assert edge.downstream.digest == f"sha256:{onnx.blob_id}"
    assert edge.downstream.properties["parity"]["label_agreement"] == 1.0
    # The new files were scanned too (no pickle content): the version still scans clean.
    assert Job.objects.filter(kind="scan", state=JobState.SUCCEEDED).count() == 4


def test_quarantined_files_are_never_loaded_and_the_failure_is_recorded(registered_model, owner, make_version,
                                                                        api_client_for, no_unpickling_here,
                                                                        django_capture_on_commit_callbacks):
    from registry.pipeline import jobs

    with django_capture_on_commit_callbacks(execute=True):
        version = make_version(registered_model, files={"model.pkl": MALICIOUS["os.system"][0]})
    response = post_conversion(api_client_for, owner, django_capture_on_commit_callbacks, "model.pkl")
    assert response.status_code == 409 and response.json()["error"]["code"] == "QUARANTINED"
    assert "posix.system" in response.json()["error"]["message"]
    assert not Job.objects.filter(kind="convert").exists()
    # A conversion queued before the verdict (or by anything else) still never loads it: the job fails, saying why.
    artifact = version.artifacts.get(path="model.pkl")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_enqueue(kind="convert", key="convert:direct", version=version, artifact=artifact, label="model.pkl",
                         params={"sha256": artifact.blob_id, "actor": owner.pk})
    job = Job.objects.get(kind="convert")
    assert job.state == JobState.FAILED and "quarantined" in job.error
    assert not Artifact.objects.filter(path="model.onnx").exists()


def test_conversion_on_upload_by_setting_synthesises_rows(registered_model, make_version, settings,
                                                          django_capture_on_commit_callbacks, no_unpickling_here):
    settings.STRATUM_CONVERT_ON_UPLOAD = True
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model, files={"ridge.joblib": joblib_bytes(benign_models()["ridge"])})
    job = Job.objects.get(kind="convert")
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["parity"]["sample"] == "synthesised rows" and job.result["parity"]["max_abs_diff"] < 1e-3
    assert Artifact.objects.filter(path="ridge.onnx", format="onnx").exists()


def test_conversion_api_refuses_other_formats_and_outsiders(registered_model, owner, outsider, make_version,
                                                           api_client_for):
    make_version(registered_model, files={"notes.md": b"# notes\n"})
    client = api_client_for(owner)
    assert client.post("/api/v1/models/churn/versions/1/conversions", {"path": "notes.md"},
                       format="json").status_code == 400
    assert client.post("/api/v1/models/churn/versions/1/conversions", {"path": "nope.pkl"},
                       format="json").status_code == 404
    assert api_client_for(outsider).post("/api/v1/models/churn/versions/1/conversions", {"path": "notes.md"},
                                         format="json").status_code == 404
