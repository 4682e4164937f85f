"""Differential test: the same raw REST scenarios against a real `mlflow server` 3.17.2 and against Stratum.

Each scenario runs once against each server; every answer (HTTP status and JSON body) is normalised (ids, timestamps,
hosts) and compared field by field. A difference fails the test unless `mlflow_differences.KNOWN` lists it with its
reason; a listed difference that no longer happens fails too, so the list (mirrored in README's "Differences from
MLflow") stays exactly what is true.

One MLflow server serves the whole module (it takes tens of seconds to start on a loaded machine); each scenario
uses its own names there and clears the registry first. Stratum's database is fresh for every scenario.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from registry import access
from tests.integration import mlflow_scenarios
from tests.integration.mlflow_differences import KNOWN
from tests.registry.mlflow_support import mlflow_server_process

pytestmark = pytest.mark.django_db(transaction=True)

TIMESTAMP_KEYS = {"creation_timestamp", "last_updated_timestamp", "creation_time", "last_update_time", "start_time",
                  "end_time", "timestamp", "creation_timestamp_ms", "last_updated_timestamp_ms"}
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
LOGGED_MODEL_ID = re.compile(r"\bm-[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    """One stock MLflow server for the module (STRATUM_TEST_MLFLOW_URL names a running one to reuse instead)."""
    if reuse := os.environ.get("STRATUM_TEST_MLFLOW_URL"):
        yield reuse
        return
    with mlflow_server_process(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@dataclass
class Side:
    """One server under test: where it is, how to authenticate, and what its ids normalise to."""

    name: str
    base: str
    headers: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, Any]] = field(default_factory=list)

    def placeholder(self, kind: str, value: str) -> str:
        key = f"{kind}:{value}"
        if key not in self.ids:
            self.ids[key] = f"<{kind}{sum(1 for k in self.ids if k.startswith(kind + ':')) + 1}>"
        return self.ids[key]

    def normalise(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.normalise(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normalise(v, key) for v in value]
        if key in TIMESTAMP_KEYS and isinstance(value, int | str) and str(value).isdigit():
            return "<ts>"
        if key == "experiment_id" and isinstance(value, str):
            return self.placeholder("experiment", value)
        if isinstance(value, str):
            value = value.replace(self.base, "<host>")
            value = LOGGED_MODEL_ID.sub(lambda m: self.placeholder("model", m.group(0)), value)
            value = RUN_ID.sub(lambda m: self.placeholder("run", m.group(0)), value)
            value = re.sub(r"mlflow-artifacts:/\d+\b", "mlflow-artifacts:/<exp>", value)
            value = re.sub(r"\b\d+/(<run\d+>)", r"<exp>/\1", value)  # an experiment id in an artifact path
        return value

    def call(self, label: str, method: str, route: str, body: Any = None, *, raw: bool = False) -> Any:
        """Send one request, record its normalised answer under `label`, and return the raw JSON."""
        url = f"{self.base}/api/2.0/{route}"
        if method == "GET":
            response = requests.get(url, params=body, headers=self.headers, timeout=30)
        elif raw:
            response = requests.request(method, url, data=body, headers={**self.headers,
                                                                          "Content-Type": "application/json"},
                                        timeout=30)
        else:
            response = requests.request(method, url, json=body, headers=self.headers, timeout=30)
        try:
            payload = response.json()
        except ValueError:
            payload = {"<non-json>": response.text[:200]}
        self.answers.append((label, {"status": response.status_code, "body": self.normalise(payload)}))
        return payload

    def note(self, label: str, value: Any) -> None:
        """Record a derived fact (for example: did a timestamp move?) to compare like an answer."""
        self.answers.append((label, {"derived": value}))


def _diff(left: Any, right: Any, where: str = "") -> list[tuple[str, str]]:
    """(path, what differs) for every place where MLflow's answer and Stratum's differ; list items by index."""
    if isinstance(left, dict) and isinstance(right, dict):
        out = []
        for key in sorted(set(left) | set(right), key=str):
            if key not in right:
                out.append((f"{where}.{key}", f"only MLflow has {json.dumps(left[key])[:200]}"))
            elif key not in left:
                out.append((f"{where}.{key}", f"only Stratum has {json.dumps(right[key])[:200]}"))
            else:
                out += _diff(left[key], right[key], f"{where}.{key}")
        return out
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [d for i, (a, b) in enumerate(zip(left, right, strict=True)) for d in _diff(a, b, f"{where}[{i}]")]
    if left != right:
        return [(where, f"MLflow {json.dumps(left)[:300]} / Stratum {json.dumps(right)[:300]}")]
    return []


def _generic(path: str) -> str:
    """The path with list indexes dropped, the form KNOWN names a field in."""
    return re.sub(r"\[\d+\]", "", path)


@pytest.fixture
def stratum_side(live_server, owner):
    _, raw = access.token_create(user=owner, actor=owner, name="differential")
    return Side("stratum", live_server.url, {"Authorization": f"Bearer {raw}"})


def _clear_mlflow_registry(side: Side) -> None:
    while True:
        found = requests.get(f"{side.base}/api/2.0/mlflow/registered-models/search", params={"max_results": 1000},
                             timeout=30).json().get("registered_models", [])
        if not found:
            return
        for model in found:
            requests.delete(f"{side.base}/api/2.0/mlflow/registered-models/delete", json={"name": model["name"]},
                            timeout=30)


def run_both(scenario: Callable[[Side], None], mlflow_url: str, stratum: Side) -> dict[str, list[tuple[str, str]]]:
    """Run `scenario` against both servers; return {label: [(path, what differs)]} for every answer that differs."""
    mlflow_side = Side("mlflow", mlflow_url, {})
    _clear_mlflow_registry(mlflow_side)
    scenario(mlflow_side)
    scenario(stratum)
    assert [label for label, _ in mlflow_side.answers] == [label for label, _ in stratum.answers]
    found: dict[str, list[str]] = {}
    for (label, left), (_, right) in zip(mlflow_side.answers, stratum.answers, strict=True):
        if differences := _diff(left, right):
            found[label] = differences
    return found


@pytest.mark.parametrize("scenario", mlflow_scenarios.ALL, ids=lambda s: s.__name__)
def test_stratum_answers_as_mlflow_does(scenario, mlflow_url, stratum_side):
    found = run_both(scenario, mlflow_url, stratum_side)
    name = scenario.__name__
    known = {(label, path) for (scen, label, path) in KNOWN if scen == name}
    everywhere = {path for (scen, _, path) in KNOWN if scen == "*"}  # a field name, wherever it appears
    used: set[tuple[str, str]] = set()

    def explained(label: str, path: str) -> bool:
        """Whether KNOWN lists this field (or a field it is part of) for this answer."""
        generic = _generic(path)
        for entry_label, entry_path in known:
            if entry_label == label and (generic == entry_path or generic.startswith(entry_path + ".")):
                used.add((entry_label, entry_path))
                return True
        return path.rsplit(".", 1)[-1] in everywhere

    unexplained = [f"{label} {path}: {text}" for label, diffs in found.items() for path, text in diffs
                   if not explained(label, path)]
    stale = sorted(known - used)
    report = "\n".join(unexplained)
    assert not unexplained, f"Stratum answers differently from MLflow {mlflow_scenarios.VERSION}:\n{report}"
    assert not stale, f"listed as differences but now answered as MLflow does (remove from KNOWN): {stale}"


def test_split_setup_runs_on_mlflow_registry_on_stratum(mlflow_url, live_server, owner, monkeypatch):
    """Training logs to a real MLflow tracking server; the stock client registers into Stratum (set_registry_uri);
    the version keeps its external run as unverified provenance, and loading it by alias works as against MLflow."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from registry.lineage.models import LineageEdge, NodeKind
    from registry.models import ModelVersion

    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    _, raw = access.token_create(user=owner, actor=owner, name="split")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", raw)  # the MLflow server ignores it; Stratum needs it
    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_registry_uri(live_server.url)
    try:
        mlflow.set_experiment(f"split-{mlflow_scenarios.MARK}")
        X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
        registered = mlflow.register_model(f"runs:/{run.info.run_id}/model", "split-churn")
        assert (registered.version, registered.run_id) == ("1", run.info.run_id)
        assert registered.status_message == f"Run {run.info.run_id} is held elsewhere: not verified by Stratum."

        version = ModelVersion.objects.get(model__name="split-churn")
        # MLflow 3's client registers the run's logged model: source models:/m-<id>, which only MLflow holds.
        logged = mlflow.MlflowClient(tracking_uri=mlflow_url).search_logged_models(
            experiment_ids=[run.info.experiment_id])[0]
        assert (version.source_uri, version.run_id) == (f"models:/{logged.model_id}", run.info.run_id)
        upstream = LineageEdge.objects.get(downstream__model_version=version).upstream
        assert (upstream.kind, upstream.external_id) == (NodeKind.EXTERNAL_RUN, run.info.run_id)

        client = mlflow.MlflowClient(tracking_uri=mlflow_url, registry_uri=live_server.url)
        client.set_registered_model_alias("split-churn", "champion", "1")
        loaded = mlflow.sklearn.load_model("models:/split-churn@champion")  # get-download-uri, then MLflow's files
        assert list(loaded.predict(X)) == [0, 0, 1, 1]
    finally:
        if mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_registry_uri(None)
        mlflow.set_tracking_uri(None)
