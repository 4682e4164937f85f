"""Experiment and run pages: what a person sees, who may see it, readable errors, and a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import Role
from registry.tracking import artifacts as tracking_artifacts
from registry.tracking import experiments, runs
from tests.conftest import spooled

pytestmark = pytest.mark.django_db

PICKLE = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


@pytest.fixture
def client_for():
    def _client(user):
        client = Client()
        client.force_login(user)
        return client

    return _client


def log_run(actor, experiment, name: str, *, auc: list[float], depth: str, files: dict[str, bytes] | None = None,
            dataset: str = "train-set"):
    """Log a run as the MLflow routes do: params, an auc history over steps, a loss, a dataset and files."""
    run = runs.run_create(actor=actor, experiment=experiment, run_name=name, start_time=1_700_000_000_000)
    runs.run_log_batch(actor=actor, run=run, params=[{"key": "max_depth", "value": depth}],
                       metrics=[{"key": "auc", "value": v, "step": i, "timestamp": 1_700_000_000_000 + i}
                                for i, v in enumerate(auc)]
                       + [{"key": "loss", "value": 1 - auc[-1], "step": 0, "timestamp": 1_700_000_000_000}],
                       tags=[{"key": "team", "value": "ml"}])
    runs.run_log_inputs(actor=actor, run=run, datasets=[{"dataset": {"name": dataset, "digest": "d1"},
                                                         "tags": [{"key": "mlflow.data.context",
                                                                   "value": "training"}]}])
    for path, data in (files or {}).items():
        root = tracking_artifacts.artifact_root_resolve(
            actor=actor, path=f"{experiment.pk}/{run.run_id}/artifacts/{path}")
        tracking_artifacts.artifact_put(actor=actor, root=root, upload=spooled(data))
    runs.run_update(actor=actor, run=run, status="FINISHED", end_time=1_700_000_100_000)
    return run


@pytest.fixture
def experiment(owner):
    return experiments.experiment_create(actor=owner, name="churn-training")


def test_experiment_list_shows_run_counts_and_last_activity(client_for, owner, experiment):
    log_run(owner, experiment, "first", auc=[0.5, 0.8], depth="4")
    log_run(owner, experiment, "second", auc=[0.6, 0.9], depth="6")
    experiments.experiment_create(actor=owner, name="empty-one")
    body = client_for(owner).get("/experiments/").content.decode()
    assert "churn-training" in body and "empty-one" in body
    row = body[body.index("churn-training"):body.index("</tr>", body.index("churn-training"))]
    assert '<td class="num">2</td>' in row and "2023-11-14 22:15 UTC" in row  # end of the latest run
    assert 'aria-current="page">Experiments</a>' in body


def test_experiment_page_filters_sorts_and_chooses_columns(client_for, owner, experiment):
    log_run(owner, experiment, "shallow", auc=[0.5, 0.8], depth="4")
    log_run(owner, experiment, "deep", auc=[0.6, 0.9], depth="6")
    client = client_for(owner)
    url = f"/experiments/{experiment.pk}/"
    body = client.get(url).content.decode()
    assert "shallow" in body and "deep" in body and "max_depth" in body and "0.9" in body
    body = client.get(url, {"filter": "metrics.auc > 0.85 and params.max_depth = '6'"}).content.decode()
    assert "deep" in body and "shallow" not in body and "1 run match" in body
    ascending = client.get(url, {"order": "metrics.`auc` ASC"}).content.decode()
    assert ascending.index("shallow") < ascending.index(">deep<")
    descending = client.get(url, {"order": "metrics.`auc` DESC"}).content.decode()
    assert descending.index(">deep<") < descending.index("shallow")
    assert 'aria-sort="descending"' in descending
    only_loss = client.get(url, {"metric": "loss", "param": "nope"}).content.decode()
    assert ">loss</a>" in only_loss and ">auc</a>" not in only_loss and "max_depth</a>" in only_loss


def test_a_bad_filter_or_order_is_a_readable_400(client_for, owner, experiment):
    log_run(owner, experiment, "one", auc=[0.5], depth="4")
    client = client_for(owner)
    for query in ({"filter": "metrics.auc >"}, {"filter": "metrics.auc > 'high'"}, {"filter": "bogus.x = 1"},
                  {"order": "nonsense.key DESC"}):
        response = client.get(f"/experiments/{experiment.pk}/", query)
        assert response.status_code == 400, query
        body = response.content.decode()
        assert "That filter did not work." in body and "Traceback" not in body
    response = client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.auc >"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "<html" not in response.content.decode()


def test_run_page_shows_history_chart_files_and_versions(client_for, owner, experiment):
    run = log_run(owner, experiment, "deep", auc=[0.6, 0.7, 0.9], depth="6",
                  files={"plots/roc.txt": b"roc curve", "model.pkl": PICKLE})
    model = services.model_create(actor=owner, name="churn")
    services.version_create(model=model, actor=owner, run_id=run.run_id, metrics={"auc": 0.9})
    client = client_for(owner)
    body = client.get(f"/runs/{run.run_id}/").content.decode()
    assert 'data-metric="auc"' in body and '"x":[0,1,2]' in body.replace(" ", "")  # the step history
    assert "max_depth" in body and "train-set" in body and "training" in body and "team" in body
    assert "plots" in body and "roc.txt" in body and f"/runs/{run.run_id}/artifacts/plots/roc.txt" in body
    assert "not served" in body and f"/runs/{run.run_id}/artifacts/model.pkl" not in body
    assert "/models/churn/versions/1/" in body
    # the version links back
    assert f'href="/runs/{run.run_id}/"' in client.get("/models/churn/versions/1/").content.decode()

    download = client.get(f"/runs/{run.run_id}/artifacts/plots/roc.txt")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"roc curve"
    assert download["Content-Disposition"] == 'attachment; filename="roc.txt"'
    refused = client.get(f"/runs/{run.run_id}/artifacts/model.pkl")
    assert refused.status_code == 403 and "not been scanned" in refused.content.decode()
    assert client.get(f"/runs/{run.run_id}/artifacts/plots/..%2F..%2Fetc/passwd").status_code == 400
    assert client.get(f"/runs/{run.run_id}/artifacts/missing.txt").status_code == 404


def test_an_outsider_gets_404_and_a_model_reader_may_open_the_run(client_for, owner, outsider, make_user, grant,
                                                                  experiment):
    run = log_run(owner, experiment, "deep", auc=[0.9], depth="6", files={"notes.txt": b"hi"})
    model = services.model_create(actor=owner, name="churn")
    services.version_create(model=model, actor=owner, run_id=run.run_id)
    stranger = client_for(outsider)
    for url in (f"/experiments/{experiment.pk}/", f"/runs/{run.run_id}/", f"/runs/{run.run_id}/artifacts/notes.txt",
                f"/compare/runs/?runs={run.run_id},{'0' * 32}", "/experiments/999/", "/runs/nope/"):
        assert stranger.get(url).status_code == 404, url
    assert "churn-training" not in stranger.get("/experiments/").content.decode()
    assert stranger.get("/experiments/abc/").status_code == 404

    reader = make_user("reader")
    grant(model, reader, Role.VIEWER)
    page = client_for(reader).get(f"/runs/{run.run_id}/")
    assert page.status_code == 200 and "/models/churn/versions/1/" in page.content.decode()
    assert f'href="/experiments/{experiment.pk}/"' not in page.content.decode()  # the experiment stays its owner's
    assert client_for(reader).get(f"/experiments/{experiment.pk}/").status_code == 404


def test_compare_runs(client_for, owner, experiment):
    a = log_run(owner, experiment, "shallow", auc=[0.5, 0.8], depth="4")
    b = log_run(owner, experiment, "deep", auc=[0.6, 0.9], depth="6", dataset="train-v2")
    client = client_for(owner)
    redirect = client.get("/compare/runs/", {"run": [a.run_id, b.run_id]})
    assert redirect.status_code == 302 and redirect["Location"].endswith(f"runs={a.run_id}%2C{b.run_id}")
    body = client.get(redirect["Location"]).content.decode()
    assert "shallow" in body and "deep" in body and "(+0.1)" in body and "max_depth" in body
    assert "train-v2" in body and 'id="metric-chart"' in body
    response = client.get("/compare/runs/", {"runs": a.run_id})
    assert response.status_code == 400 and "Pick 2 to 5 runs" in response.content.decode()
    response = client.get("/compare/runs/", {"runs": f"{a.run_id},../x"})
    assert response.status_code == 400 and "is not a run id" in response.content.decode()


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_counts_do_not_grow_with_runs_metrics_or_files(client_for, owner, experiment):
    client = client_for(owner)
    first = log_run(owner, experiment, "r0", auc=[0.5, 0.6], depth="1", files={"a.txt": b"a"})
    model = services.model_create(actor=owner, name="churn")
    services.version_create(model=model, actor=owner, run_id=first.run_id)
    few = [_count(client, "/experiments/"), _count(client, f"/experiments/{experiment.pk}/"),
           _count(client, f"/runs/{first.run_id}/")]
    for i in range(1, 12):
        log_run(owner, experiment, f"r{i}", auc=[0.5 + i / 100] * 5, depth=str(i), dataset=f"set-{i}")
    other = experiments.experiment_create(actor=owner, name="second")
    log_run(owner, other, "x", auc=[0.1], depth="1")
    runs.run_log_batch(actor=owner, run=first, metrics=[
        {"key": f"m{k}", "value": k, "step": s, "timestamp": 1} for k in range(6) for s in range(10)])
    for path in ("b.txt", "dir/c.txt", "dir/d.txt"):
        root = tracking_artifacts.artifact_root_resolve(
            actor=owner, path=f"{experiment.pk}/{first.run_id}/artifacts/{path}")
        tracking_artifacts.artifact_put(actor=owner, root=root, upload=spooled(path.encode()))
    services.version_create(model=model, actor=owner, run_id=first.run_id)
    many = [_count(client, "/experiments/"), _count(client, f"/experiments/{experiment.pk}/"),
            _count(client, f"/runs/{first.run_id}/")]
    assert few == many, f"queries for (list, experiment, run): {few} with few rows, {many} with many"


@pytest.mark.parametrize("query", [
    {"filter": "params.max_depth = 'a\x00b'"}, {"filter": "metrics.auc > 1e999"}, {"order": "metrics.`a\x00` DESC"},
    {"metric": "a\x00b", "param": "\x00"}, {"page": "x\x00"}, {"filter": "x" * 5000},
    {"filter": "tags.`" + "a" * 300 + "` = 'b'"}, {"filter": "metrics.auc > 9223372036854775808"},
])
def test_hostile_queries_never_break_the_experiment_page(client_for, owner, experiment, query):
    log_run(owner, experiment, "one", auc=[0.5], depth="4")
    response = client_for(owner).get(f"/experiments/{experiment.pk}/", query)
    assert response.status_code in (200, 400), response.status_code


@pytest.mark.parametrize("url", ["/experiments/99999999999999999999999/", "/runs/" + "a" * 40 + "/",
                                 "/runs/a%00b/", "/runs/abc/artifacts/%00", "/compare/runs/?runs=a%00,b"])
def test_hostile_ids_are_404_or_400(client_for, owner, url):
    assert client_for(owner).get(url).status_code in (400, 404)
