"""runs/search and experiment tag filters: what the differential test cannot show (visibility, Stratum's OR)."""

from __future__ import annotations

import pytest

from registry.tracking import experiments, runs

pytestmark = pytest.mark.django_db

SEARCH = "/api/2.0/mlflow/runs/search"


def _run(actor, exp, name, **metrics):
    run = runs.run_create(actor=actor, experiment=exp, start_time=len(name), run_name=name)
    for step, (key, value) in enumerate(metrics.items()):
        runs.run_log_batch(actor=actor, run=run, metrics=[{"key": key.rstrip("_"), "value": value,
                                                           "timestamp": 1, "step": step}])
    return run


def _names(response):
    assert response.status_code == 200, response.content
    return [r["info"]["run_name"] for r in response.json().get("runs", [])]


def test_search_lists_only_runs_the_caller_may_see(owner, make_user, api_client_for):
    other = make_user("other")
    mine = experiments.experiment_create(actor=owner, name="mine")
    theirs = experiments.experiment_create(actor=other, name="theirs")
    _run(owner, mine, "a")
    _run(other, theirs, "b")
    body = {"experiment_ids": [str(mine.pk), str(theirs.pk)]}
    assert _names(api_client_for(owner).post(SEARCH, body, format="json")) == ["a"]
    assert _names(api_client_for(other).post(SEARCH, body, format="json")) == ["b"]


def test_metric_filter_reads_the_latest_point(owner, api_client_for):
    exp = experiments.experiment_create(actor=owner, name="latest")
    # "falls": auc 0.9 at step 0, then 0.1 at step 1; "rises": the other way round.
    _run(owner, exp, "falls", auc=0.9, auc_=0.1)
    _run(owner, exp, "rises", auc=0.1, auc_=0.9)
    api = api_client_for(owner)
    body = {"experiment_ids": [str(exp.pk)], "filter": "metrics.auc > 0.5"}
    assert _names(api.post(SEARCH, body, format="json")) == ["rises"]


def test_or_and_unknown_attribute(owner, api_client_for):
    exp = experiments.experiment_create(actor=owner, name="or")
    for name in ("x", "yy", "zzz"):
        _run(owner, exp, name)
    api = api_client_for(owner)
    body = {"experiment_ids": [str(exp.pk)], "filter": "run_name = 'x' OR run_name = 'zzz'"}
    assert _names(api.post(SEARCH, body, format="json")) == ["zzz", "x"]  # start_time DESC
    bad = api.post(SEARCH, {"experiment_ids": [str(exp.pk)], "filter": "attributes.nope = 'x'"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid attribute key 'nope'" in bad.json()["message"]


def test_experiment_tag_filter_needs_the_tag_and_refuses_unsafe_keys(owner, api_client_for):
    experiments.experiment_create(actor=owner, name="t1", tags={"team": "ml"})
    experiments.experiment_create(actor=owner, name="t2", tags={"team": "ops"})
    experiments.experiment_create(actor=owner, name="t3")
    api = api_client_for(owner)

    def names(flt):
        response = api.post("/api/2.0/mlflow/experiments/search", {"filter": flt}, format="json")
        assert response.status_code == 200, response.content
        return [e["name"] for e in response.json().get("experiments", [])]

    assert names("tags.team = 'ml'") == ["t1"]
    assert names("tags.team != 'ml'") == ["t2"]  # t3 has no such tag, so it does not match (as on MLflow)
    assert names("tags.team LIKE '%s'") == ["t2"]
    bad = api.post("/api/2.0/mlflow/experiments/search", {"filter": "tags.a__b = 'x'"}, format="json")
    assert bad.status_code == 400


def test_is_null_on_params_and_tags_with_or(owner, api_client_for):
    """IS [NOT] NULL asks whether a run has the key at all; Stratum's OR combines it like any comparison."""
    exp = experiments.experiment_create(actor=owner, name="nulls")
    a, b, _ = (_run(owner, exp, name) for name in ("a", "bb", "ccc"))
    runs.run_log_batch(actor=owner, run=a, params=[{"key": "lr", "value": "0.1"}])
    runs.run_log_batch(actor=owner, run=b, tags=[{"key": "team", "value": "ml"}])
    api = api_client_for(owner)

    def names(flt):
        return _names(api.post(SEARCH, {"experiment_ids": [str(exp.pk)], "filter": flt}, format="json"))

    assert names("params.lr IS NOT NULL") == ["a"]
    assert names("params.lr IS NULL") == ["ccc", "bb"]
    assert names("params.lr IS NOT NULL OR tags.team IS NOT NULL") == ["bb", "a"]
    assert names("params.lr IS NULL AND tags.team IS NULL") == ["ccc"]
    bad = api.post(SEARCH, {"experiment_ids": [str(exp.pk)], "filter": "metrics.auc IS NULL"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["message"] == ("IS NULL / IS NOT NULL is only supported for tags and params, not for "
                                     "'metric' 'auc'")
