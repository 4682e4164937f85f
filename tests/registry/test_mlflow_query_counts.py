"""Search pages of the MLflow-compatible API cost a fixed number of queries: 50 rows take as many as 2."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import AccessToken
from registry.tracking import experiments, logged_models, runs

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow"


class Counted(int):
    """A number of queries that shows their SQL when an assertion prints it."""

    sql: list[str]

    def __repr__(self) -> str:
        return f"{int(self)} queries:\n" + "\n".join(q[:300] for q in self.sql)


def _queries(call) -> tuple[Counted, dict]:
    """Run `call` (an API request) and return (queries it made, its JSON). Authentication's are left out: the token
    is read from a cache that may expire and its last use stamped once in five minutes, so they come and go with
    the clock, never with the rows."""
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    assert response.status_code == 200, response.content
    sql = [q["sql"] for q in ctx.captured_queries if f'"{AccessToken._meta.db_table}"' not in q["sql"]]
    count = Counted(len(sql))
    count.sql = sql
    return count, response.json()


def _fill_run(owner, exp, i: int) -> None:
    """A run with everything runs/search shows: metric history, params, tags, a dataset and a logged model."""
    run = runs.run_create(actor=owner, experiment=exp, start_time=1000 + i, run_name=f"r{i}")
    runs.run_log_batch(actor=owner, run=run, params=[{"key": "depth", "value": str(i)}, {"key": "lr", "value": "1"}],
                       tags=[{"key": "team", "value": "ml"}],
                       metrics=[{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0},
                                {"key": "auc", "value": 0.5, "timestamp": 1, "step": 0},
                                {"key": "loss", "value": 0.5 / (i + 1), "timestamp": 2, "step": 1}])
    runs.run_log_inputs(actor=owner, run=run, datasets=[{"dataset": {"name": f"train-{i}", "digest": "d"},
                                                         "tags": [{"key": "mlflow.data.context", "value": "train"}]}])
    logged_models.logged_model_create(actor=owner, experiment=exp, name="clf", source_run=run)


def test_run_search_page_costs_the_same_for_2_and_50_runs(owner, api_client_for):
    exp = experiments.experiment_create(actor=owner, name="counted")
    api = api_client_for(owner)

    def search():
        return api.post(f"{API}/runs/search", {"experiment_ids": [str(exp.pk)], "max_results": 100}, format="json")

    for i in range(2):
        _fill_run(owner, exp, i)
    few, body = _queries(search)
    assert len(body["runs"]) == 2
    for i in range(2, 50):
        _fill_run(owner, exp, i)
    many, body = _queries(search)
    assert len(body["runs"]) == 50
    assert many == few, f"runs/search made {few!r} for 2 runs and {many!r} for 50"
    first = body["runs"][0]  # newest start time first: r49
    assert first["info"]["run_name"] == "r49"
    assert [m["key"] for m in first["data"]["metrics"]] == ["loss", "auc"]  # the order first logged
    assert first["data"]["metrics"][0] == {"key": "loss", "value": 0.01, "timestamp": 2, "step": 1}  # the latest
    assert first["data"]["params"] == [{"key": "depth", "value": "49"}, {"key": "lr", "value": "1"}]
    assert {"key": "team", "value": "ml"} in first["data"]["tags"]
    assert first["inputs"]["dataset_inputs"][0]["dataset"] == {"name": "train-49", "digest": "d"}
    assert len(first["outputs"]["model_outputs"]) == 1
    # runs/get shapes a run the same way runs/search does.
    one = api.get(f"{API}/runs/get", {"run_id": first["info"]["run_id"]}).json()["run"]
    assert one == first


def test_experiment_search_page_costs_the_same_for_2_and_50(owner, api_client_for):
    api = api_client_for(owner)

    def search():
        return api.post(f"{API}/experiments/search", {"max_results": 100, "filter": "name LIKE 'e%'"}, format="json")

    for i in range(2):
        experiments.experiment_create(actor=owner, name=f"e{i}", tags={"team": "ml"})
    search()
    few, body = _queries(search)
    assert len(body["experiments"]) == 2
    for i in range(2, 50):
        experiments.experiment_create(actor=owner, name=f"e{i}", tags={"team": "ml"})
    many, body = _queries(search)
    assert len(body["experiments"]) == 50
    assert many == few


def _registered(owner, make_version, i: int) -> None:
    model = services.model_create(actor=owner, name=f"m{i:02d}", tags={"team": "ml"})
    version = make_version(model, owner, run_id=f"{i:032x}", tags={"k": "v"})
    services.alias_set(model=model, alias="champion", version=version, actor=owner)


def test_registry_search_pages_cost_the_same_for_2_and_50(owner, api_client_for, make_version):
    api = api_client_for(owner)

    def models():
        return api.get(f"{API}/registered-models/search", {"max_results": 100})

    def versions():
        return api.get(f"{API}/model-versions/search", {"max_results": 100})

    for i in range(2):
        _registered(owner, make_version, i)
    models()
    few_models, body = _queries(models)
    assert len(body["registered_models"]) == 2
    few_versions, body = _queries(versions)
    assert len(body["model_versions"]) == 2
    for i in range(2, 50):
        _registered(owner, make_version, i)
    many_models, body = _queries(models)
    assert len(body["registered_models"]) == 50
    assert body["registered_models"][0]["aliases"] == [{"alias": "champion", "version": "1"}]
    many_versions, body = _queries(versions)
    assert len(body["model_versions"]) == 50
    assert (many_models, many_versions) == (few_models, few_versions)


def test_logged_model_search_page_costs_the_same_for_2_and_50(owner, api_client_for):
    exp = experiments.experiment_create(actor=owner, name="lm-counted")
    api = api_client_for(owner)

    def search():
        return api.post(f"{API}/logged-models/search", {"experiment_ids": [str(exp.pk)], "max_results": 100},
                        format="json")

    for i in range(2):
        logged_models.logged_model_create(actor=owner, experiment=exp, name=f"lm{i}")
    search()
    few, body = _queries(search)
    assert len(body["models"]) == 2
    for i in range(2, 50):
        logged_models.logged_model_create(actor=owner, experiment=exp, name=f"lm{i}")
    many, body = _queries(search)
    assert len(body["models"]) == 50
    assert many == few
