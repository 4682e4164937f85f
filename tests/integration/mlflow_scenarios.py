"""Scenarios of the MLflow differential test: raw REST calls, each answer labelled, the same against both servers.

A scenario takes a `Side` (tests/integration/test_mlflow_differential.py) and calls `side.call(label, method, route,
body)`; ids that a server hands out are taken from its own answers, so the same scenario runs unchanged on both.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

VERSION = "3.17.2"
REG = "mlflow/registered-models"
MV = "mlflow/model-versions"


def _tick() -> None:
    time.sleep(0.01)  # two writes never share a millisecond, so "did the timestamp move" has one answer


def _model(side: Any, name: str) -> dict:
    return side.call(f"get {name}", "GET", f"{REG}/get", {"name": name}).get("registered_model", {})


def registered_models(side: Any) -> None:
    side.call("create", "POST", f"{REG}/create",
              {"name": "rm-a", "description": "first", "tags": [{"key": "team", "value": "ml"}]})
    side.call("create duplicate", "POST", f"{REG}/create", {"name": "rm-a"})
    side.call("create without name", "POST", f"{REG}/create", {})
    side.call("create empty name", "POST", f"{REG}/create", {"name": ""})
    side.call("get", "GET", f"{REG}/get", {"name": "rm-a"})
    side.call("get missing", "GET", f"{REG}/get", {"name": "rm-missing"})
    side.call("get without name", "GET", f"{REG}/get", {})
    side.call("update", "PATCH", f"{REG}/update", {"name": "rm-a", "description": "second"})
    side.call("update missing", "PATCH", f"{REG}/update", {"name": "rm-missing", "description": "x"})
    side.call("set tag", "POST", f"{REG}/set-tag", {"name": "rm-a", "key": "stage", "value": "dev"})
    side.call("set tag missing model", "POST", f"{REG}/set-tag", {"name": "rm-missing", "key": "k", "value": "v"})
    side.call("set tag without key", "POST", f"{REG}/set-tag", {"name": "rm-a", "value": "v"})
    side.call("delete tag", "DELETE", f"{REG}/delete-tag", {"name": "rm-a", "key": "team"})
    side.call("delete absent tag", "DELETE", f"{REG}/delete-tag", {"name": "rm-a", "key": "nope"})
    side.call("get after tags", "GET", f"{REG}/get", {"name": "rm-a"})
    side.call("create b", "POST", f"{REG}/create", {"name": "rm-b"})
    side.call("rename onto existing", "POST", f"{REG}/rename", {"name": "rm-a", "new_name": "rm-b"})
    side.call("rename missing", "POST", f"{REG}/rename", {"name": "rm-missing", "new_name": "rm-c"})
    side.call("rename without new name", "POST", f"{REG}/rename", {"name": "rm-a"})
    side.call("rename", "POST", f"{REG}/rename", {"name": "rm-a", "new_name": "rm-c"})
    side.call("get old name", "GET", f"{REG}/get", {"name": "rm-a"})
    side.call("delete", "DELETE", f"{REG}/delete", {"name": "rm-c"})
    side.call("delete missing", "DELETE", f"{REG}/delete", {"name": "rm-c"})
    side.call("get deleted", "GET", f"{REG}/get", {"name": "rm-c"})


def model_versions(side: Any) -> None:
    side.call("create model", "POST", f"{REG}/create", {"name": "mv"})
    side.call("create v1", "POST", f"{MV}/create",
              {"name": "mv", "source": "s3://bucket/mv/1", "description": "one",
               "tags": [{"key": "k", "value": "v1"}]})
    side.call("create v2", "POST", f"{MV}/create",
              {"name": "mv", "source": "s3://bucket/mv/2", "run_id": "0123456789abcdef0123456789abcdef"})
    side.call("create for missing model", "POST", f"{MV}/create", {"name": "mv-missing", "source": "s3://b/x"})
    side.call("create without source", "POST", f"{MV}/create", {"name": "mv"})
    side.call("get v1", "GET", f"{MV}/get", {"name": "mv", "version": "1"})
    side.call("get missing version", "GET", f"{MV}/get", {"name": "mv", "version": "9"})
    side.call("get non-integer version", "GET", f"{MV}/get", {"name": "mv", "version": "abc"})
    side.call("get version 0", "GET", f"{MV}/get", {"name": "mv", "version": "0"})
    side.call("get negative version", "GET", f"{MV}/get", {"name": "mv", "version": "-1"})
    side.call("get fractional version", "GET", f"{MV}/get", {"name": "mv", "version": "1.0"})
    side.call("get non-ASCII digit version", "GET", f"{MV}/get", {"name": "mv", "version": "\u0661"})
    side.call("get version beyond 64 bits", "GET", f"{MV}/get", {"name": "mv", "version": "9" * 20})
    side.call("get version of missing model", "GET", f"{MV}/get", {"name": "mv-missing", "version": "1"})
    side.call("get without version", "GET", f"{MV}/get", {"name": "mv"})
    side.call("update", "PATCH", f"{MV}/update", {"name": "mv", "version": "1", "description": "uno"})
    side.call("update missing", "PATCH", f"{MV}/update", {"name": "mv", "version": "9", "description": "x"})
    side.call("set tag", "POST", f"{MV}/set-tag", {"name": "mv", "version": "1", "key": "ok", "value": "yes"})
    side.call("set tag missing version", "POST", f"{MV}/set-tag",
              {"name": "mv", "version": "9", "key": "ok", "value": "yes"})
    side.call("delete tag", "DELETE", f"{MV}/delete-tag", {"name": "mv", "version": "1", "key": "k"})
    side.call("delete absent tag", "DELETE", f"{MV}/delete-tag", {"name": "mv", "version": "1", "key": "nope"})
    side.call("get v1 after", "GET", f"{MV}/get", {"name": "mv", "version": "1"})
    side.call("model shows latest versions", "GET", f"{REG}/get", {"name": "mv"})
    side.call("search models shows latest versions", "GET", f"{REG}/search", {"filter": "name = 'mv'"})
    side.call("download uri", "GET", f"{MV}/get-download-uri", {"name": "mv", "version": "1"})
    before = _model(side, "mv")["last_updated_timestamp"]
    _tick()
    side.call("delete v2", "DELETE", f"{MV}/delete", {"name": "mv", "version": "2"})
    after = _model(side, "mv")["last_updated_timestamp"]
    side.note("model last_updated moves when a version is deleted", after > before)
    side.call("delete v2 again", "DELETE", f"{MV}/delete", {"name": "mv", "version": "2"})
    side.call("get deleted", "GET", f"{MV}/get", {"name": "mv", "version": "2"})
    side.call("create v3 (numbers never reused)", "POST", f"{MV}/create", {"name": "mv", "source": "s3://bucket/mv/3"})


def stages(side: Any) -> None:
    side.call("create model", "POST", f"{REG}/create", {"name": "st"})
    for n in range(1, 5):
        side.call(f"create v{n}", "POST", f"{MV}/create", {"name": "st", "source": f"s3://bucket/st/{n}"})
    before = _model(side, "st")["last_updated_timestamp"]
    _tick()
    side.call("v1 to Production", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "1", "stage": "Production", "archive_existing_versions": False})
    after = _model(side, "st")["last_updated_timestamp"]
    side.note("model last_updated moves on a stage change", after > before)
    side.call("v2 to production, archive others", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "2", "stage": "production", "archive_existing_versions": True})
    side.call("v3 to Staging", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "3", "stage": "Staging", "archive_existing_versions": False})
    side.call("bad stage", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "3", "stage": "Live", "archive_existing_versions": False})
    side.call("archive existing into Archived", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "4", "stage": "Archived", "archive_existing_versions": True})
    side.call("missing version", "POST", f"{MV}/transition-stage",
              {"name": "st", "version": "9", "stage": "Staging", "archive_existing_versions": False})
    side.call("latest versions", "POST", f"{REG}/get-latest-versions", {"name": "st"})
    side.call("latest versions in stages", "POST", f"{REG}/get-latest-versions",
              {"name": "st", "stages": ["Production", "None"]})
    side.call("latest versions bad stage", "POST", f"{REG}/get-latest-versions", {"name": "st", "stages": ["Live"]})
    side.call("create model without versions", "POST", f"{REG}/create", {"name": "st-empty"})
    side.call("latest versions of a model without versions", "POST", f"{REG}/get-latest-versions",
              {"name": "st-empty"})
    side.call("latest versions missing model", "POST", f"{REG}/get-latest-versions", {"name": "st-missing"})
    side.call("model", "GET", f"{REG}/get", {"name": "st"})
    side.call("search models", "GET", f"{REG}/search", {"filter": "name = 'st'"})


def aliases(side: Any) -> None:
    side.call("create model", "POST", f"{REG}/create", {"name": "al"})
    side.call("create v1", "POST", f"{MV}/create", {"name": "al", "source": "s3://bucket/al/1"})
    side.call("create v2", "POST", f"{MV}/create", {"name": "al", "source": "s3://bucket/al/2"})
    side.call("set champion", "POST", f"{REG}/alias", {"name": "al", "alias": "champion", "version": "2"})
    side.call("set challenger", "POST", f"{REG}/alias", {"name": "al", "alias": "challenger", "version": "1"})
    side.call("set on missing version", "POST", f"{REG}/alias", {"name": "al", "alias": "x", "version": "9"})
    side.call("set reserved name", "POST", f"{REG}/alias", {"name": "al", "alias": "v1", "version": "1"})
    side.call("set latest", "POST", f"{REG}/alias", {"name": "al", "alias": "latest", "version": "1"})
    side.call("set on missing model", "POST", f"{REG}/alias", {"name": "al-missing", "alias": "x", "version": "1"})
    side.call("get by alias", "GET", f"{REG}/alias", {"name": "al", "alias": "champion"})
    side.call("get missing alias", "GET", f"{REG}/alias", {"name": "al", "alias": "nope"})
    side.call("get alias of missing model", "GET", f"{REG}/alias", {"name": "al-missing", "alias": "champion"})
    side.call("model shows aliases", "GET", f"{REG}/get", {"name": "al"})
    side.call("version shows aliases", "GET", f"{MV}/get", {"name": "al", "version": "2"})
    side.call("search versions omits aliases", "GET", f"{MV}/search", {"filter": "name = 'al'"})
    side.call("move champion", "POST", f"{REG}/alias", {"name": "al", "alias": "champion", "version": "1"})
    side.call("version after move", "GET", f"{MV}/get", {"name": "al", "version": "1"})
    side.call("delete alias", "DELETE", f"{REG}/alias", {"name": "al", "alias": "champion"})
    side.call("delete absent alias", "DELETE", f"{REG}/alias", {"name": "al", "alias": "champion"})
    side.call("delete version drops its aliases", "DELETE", f"{MV}/delete", {"name": "al", "version": "1"})
    side.call("model after", "GET", f"{REG}/get", {"name": "al"})


def search_registered_models(side: Any) -> None:
    for i, name in enumerate(["sr-b", "sr-a", "SR-c", "sr-d", "other"]):
        side.call(f"create {name}", "POST", f"{REG}/create",
                  {"name": name, "tags": [{"key": "team", "value": "ml" if i % 2 else "ops"}]})
        _tick()
    side.call("create version", "POST", f"{MV}/create", {"name": "sr-a", "source": "s3://bucket/sr/1"})

    def names(label: str, params: dict) -> None:
        side.call(label, "GET", f"{REG}/search", params)

    names("all", {})
    names("name =", {"filter": "name = 'sr-a'"})
    names("name LIKE", {"filter": "name LIKE 'sr-%'"})
    names("name ILIKE", {"filter": "name ILIKE 'sr-%'"})
    names("name !=", {"filter": "name != 'other'"})
    names("no match", {"filter": "name = 'nothing'"})
    names("tag =", {"filter": "tags.team = 'ml'"})
    names("tag LIKE", {"filter": "tags.team LIKE 'o%'"})
    names("name and tag", {"filter": "name LIKE 'sr%' AND tags.team = 'ops'"})
    names("order name DESC", {"order_by": ["name DESC"]})
    names("order last_updated", {"order_by": ["last_updated_timestamp ASC"]})
    names("order timestamp DESC", {"order_by": ["timestamp DESC"]})
    names("bad order key", {"order_by": ["nope ASC"]})
    names("bad filter", {"filter": "name = "})
    names("bad filter key", {"filter": "version_number = 1"})
    names("tag IS NULL", {"filter": "tags.team IS NULL"})
    first = side.call("page 1 of 2", "GET", f"{REG}/search", {"max_results": 2})
    token = first.get("next_page_token", "")
    second = side.call("page 2 of 2", "GET", f"{REG}/search", {"max_results": 2, "page_token": token})
    side.call("page 3 of 2", "GET", f"{REG}/search", {"max_results": 2,
                                                      "page_token": second.get("next_page_token", "")})
    names("max_results 0", {"max_results": 0})
    names("max_results too large", {"max_results": 1001})
    names("max_results not a number", {"max_results": "many"})
    names("bad page token", {"page_token": "not-a-token"})


def search_model_versions(side: Any) -> None:
    for name in ("sv-a", "sv-b"):
        side.call(f"create {name}", "POST", f"{REG}/create", {"name": name})
    for i in range(6):
        name = "sv-a" if i % 2 else "sv-b"
        side.call(f"create version {i}", "POST", f"{MV}/create",
                  {"name": name, "source": f"s3://bucket/sv/{i}", "run_id": f"{i:032x}",
                   "tags": [{"key": "parity", "value": "odd" if i % 2 else "even"}]})
        _tick()

    def search(label: str, params: dict) -> dict:
        return side.call(label, "GET", f"{MV}/search", params)

    search("all (default order)", {})
    search("name =", {"filter": "name = 'sv-a'"})
    search("name LIKE", {"filter": "name LIKE 'sv-%'"})
    search("run_id =", {"filter": f"run_id = '{3:032x}'"})
    search("run_id IN", {"filter": f"run_id IN ('{3:032x}', '{4:032x}')"})
    search("no match", {"filter": "name = 'nothing'"})
    search("tag", {"filter": "tags.parity = 'odd'"})
    search("source_path", {"filter": "source_path = 's3://bucket/sv/2'"})
    search("version_number", {"filter": "name = 'sv-a' AND version_number = 2"})
    search("version_number >", {"filter": "version_number > 2"})
    search("order version_number ASC", {"order_by": ["version_number ASC"]})
    search("order name, version", {"order_by": ["name ASC", "version_number DESC"]})
    search("order creation_timestamp", {"order_by": ["creation_timestamp DESC"]})
    search("bad filter", {"filter": "nope = 1"})
    search("tag IS NOT NULL", {"filter": "tags.parity IS NOT NULL"})
    search("bad order", {"order_by": ["nope"]})
    first = search("page 1", {"max_results": 4})
    search("page 2", {"max_results": 4, "page_token": first.get("next_page_token", "")})
    search("max_results too large", {"max_results": 200_001})
    search("bad page token", {"page_token": "xyz"})


def bad_requests(side: Any) -> None:
    side.call("body not JSON", "POST", f"{REG}/create", "{not json", raw=True)
    side.call("body a list", "POST", f"{REG}/create", "[]", raw=True)
    side.call("name a number", "POST", f"{REG}/create", {"name": 5})
    side.call("tags not a list", "POST", f"{REG}/create", {"name": "br", "tags": "x"})
    side.call("unknown route", "GET", "mlflow/registered-models/nope", {})
    side.call("wrong method", "GET", f"{REG}/create", {"name": "br"})


EXP = "mlflow/experiments"
RUNS = "mlflow/runs"
ART = "mlflow-artifacts/artifacts"
# Experiment names are never freed on MLflow (a deleted one keeps its name), so they carry this run's mark.
MARK = uuid.uuid4().hex[:8]
T0 = 1_760_000_000_000  # a fixed client-side time (ms) for runs and metrics


def experiments(side: Any) -> None:
    name = f"exp-{MARK}"
    created = side.call("create", "POST", f"{EXP}/create",
                        {"name": name, "tags": [{"key": "team", "value": "ml"}]})
    exp_id = created.get("experiment_id", "")
    side.call("create duplicate", "POST", f"{EXP}/create", {"name": name})
    side.call("create without name", "POST", f"{EXP}/create", {})
    side.call("get", "GET", f"{EXP}/get", {"experiment_id": exp_id})
    side.call("get missing", "GET", f"{EXP}/get", {"experiment_id": "987654"})
    side.call("get non-integer id", "GET", f"{EXP}/get", {"experiment_id": "abc"})
    side.call("get by name", "GET", f"{EXP}/get-by-name", {"experiment_name": name})
    side.call("get by missing name", "GET", f"{EXP}/get-by-name", {"experiment_name": f"nope-{MARK}"})
    side.call("set tag", "POST", f"{EXP}/set-experiment-tag", {"experiment_id": exp_id, "key": "k", "value": "v"})
    side.call("rename", "POST", f"{EXP}/update", {"experiment_id": exp_id, "new_name": f"{name}-renamed"})
    side.call("search by name", "POST", f"{EXP}/search", {"filter": f"name LIKE 'exp-{MARK}%'", "max_results": 10})
    side.call("search by tag", "POST", f"{EXP}/search", {"filter": f"name LIKE 'exp-{MARK}%' AND tags.team = 'ml'",
                                                        "max_results": 10})
    for label, flt in (("search by tag LIKE", "tags.team LIKE 'm%'"),
                       ("search by tag ILIKE", "tags.team ILIKE 'M%'"),
                       ("search by tag !=", "tags.team != 'ops'"), ("search by absent tag", "tags.nope = 'ml'"),
                       ("search by tag, no match", "tags.team = 'ops'"),
                       ("search by backquoted tag", "tags.`k` = 'v'"),
                       ("search by tag IS NOT NULL", "tags.team IS NOT NULL"),
                       ("search by absent tag IS NULL", "tags.nope IS NULL"),
                       ("search by tag IS NULL, no match", "tags.team IS NULL"),
                       ("search by name IS NULL", "name IS NULL")):
        side.call(label, "POST", f"{EXP}/search", {"filter": f"name LIKE 'exp-{MARK}%' AND {flt}", "max_results": 10})
    side.call("delete", "POST", f"{EXP}/delete", {"experiment_id": exp_id})
    side.call("get deleted", "GET", f"{EXP}/get", {"experiment_id": exp_id})
    side.call("search active", "POST", f"{EXP}/search", {"filter": f"name LIKE 'exp-{MARK}%'", "max_results": 10})
    side.call("search deleted", "POST", f"{EXP}/search", {"filter": f"name LIKE 'exp-{MARK}%'", "max_results": 10,
                                                         "view_type": "DELETED_ONLY"})
    side.call("restore", "POST", f"{EXP}/restore", {"experiment_id": exp_id})
    side.call("get restored", "GET", f"{EXP}/get", {"experiment_id": exp_id})


def _experiment(side: Any, suffix: str) -> str:
    return side.call("create experiment", "POST", f"{EXP}/create",
                     {"name": f"{suffix}-{MARK}"}).get("experiment_id", "")


def runs(side: Any) -> None:
    exp_id = _experiment(side, "runs")
    run = side.call("create", "POST", f"{RUNS}/create",
                    {"experiment_id": exp_id, "start_time": T0, "run_name": "first",
                     "tags": [{"key": "mlflow.user", "value": "alice"}, {"key": "team", "value": "ml"}]})
    run_id = run.get("run", {}).get("info", {}).get("run_id", "")
    side.call("create in missing experiment", "POST", f"{RUNS}/create", {"experiment_id": "987654",
                                                                         "start_time": T0})
    side.call("get", "GET", f"{RUNS}/get", {"run_id": run_id})
    side.call("get missing", "GET", f"{RUNS}/get", {"run_id": "f" * 32})
    side.call("log metric", "POST", f"{RUNS}/log-metric",
              {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": T0, "step": 0})
    side.call("log metric again", "POST", f"{RUNS}/log-metric",
              {"run_id": run_id, "key": "loss", "value": 0.25, "timestamp": T0 + 1, "step": 1})
    side.call("log metric without value", "POST", f"{RUNS}/log-metric",
              {"run_id": run_id, "key": "loss", "timestamp": T0})
    side.call("log param", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    side.call("log same param again", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "lr",
                                                                        "value": "0.1"})
    side.call("change a param", "POST", f"{RUNS}/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"})
    side.call("set tag", "POST", f"{RUNS}/set-tag", {"run_id": run_id, "key": "k", "value": "v"})
    side.call("delete tag", "POST", f"{RUNS}/delete-tag", {"run_id": run_id, "key": "k"})
    side.call("delete absent tag", "POST", f"{RUNS}/delete-tag", {"run_id": run_id, "key": "nope"})
    side.call("log batch", "POST", f"{RUNS}/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "acc", "value": 0.9, "timestamp": T0, "step": 0},
                    {"key": "acc", "value": 0.95, "timestamp": T0 + 5, "step": 1}],
        "params": [{"key": "depth", "value": "3"}],
        "tags": [{"key": "stage", "value": "train"}],
    })
    side.call("log batch with a changed param", "POST", f"{RUNS}/log-batch",
              {"run_id": run_id, "params": [{"key": "depth", "value": "4"}]})
    side.call("log empty batch", "POST", f"{RUNS}/log-batch", {"run_id": run_id})
    side.call("metric history", "GET", "mlflow/metrics/get-history", {"run_id": run_id, "metric_key": "acc"})
    side.call("metric history of an unknown key", "GET", "mlflow/metrics/get-history",
              {"run_id": run_id, "metric_key": "nope"})
    side.call("finish", "POST", f"{RUNS}/update", {"run_id": run_id, "status": "FINISHED", "end_time": T0 + 60_000})
    side.call("get finished", "GET", f"{RUNS}/get", {"run_id": run_id})
    side.call("search", "POST", f"{RUNS}/search", {"experiment_ids": [exp_id]})
    search_runs(side, exp_id)
    side.call("delete", "POST", f"{RUNS}/delete", {"run_id": run_id})
    side.call("get deleted", "GET", f"{RUNS}/get", {"run_id": run_id})
    side.call("restore", "POST", f"{RUNS}/restore", {"run_id": run_id})


def search_runs(side: Any, first_exp: str) -> None:
    """runs/search over a second experiment of three runs, then across both (no two runs share a start time:
    ties fall to run ids, which each server draws at random)."""
    exp_id = _experiment(side, "sruns")
    for i in range(3):
        run = side.call(f"create run {i}", "POST", f"{RUNS}/create",
                        {"experiment_id": exp_id, "start_time": T0 + 10 * i + 1, "run_name": f"r{i}",
                         "tags": [{"key": "parity", "value": "odd" if i % 2 else "even"}]})
        run_id = run.get("run", {}).get("info", {}).get("run_id", "")
        side.call(f"log run {i}", "POST", f"{RUNS}/log-batch", {
            "run_id": run_id,
            "metrics": [{"key": "auc", "value": 0.5 + i / 10, "timestamp": T0, "step": 0},
                        {"key": "auc", "value": 0.9 - i / 10, "timestamp": T0 + 1, "step": 1}],
            "params": [{"key": "depth", "value": str(i + 2)}] + ([{"key": "odd", "value": "yes"}] if i % 2 else []),
        })
        if i == 2:
            side.call("finish run 2", "POST", f"{RUNS}/update", {"run_id": run_id, "status": "FINISHED",
                                                                 "end_time": T0 + 100})

    def search(label: str, body: dict) -> dict:
        return side.call(f"search {label}", "POST", f"{RUNS}/search", {"experiment_ids": [exp_id], **body})

    search("all (default order)", {})
    search("latest metric >", {"filter": "metrics.auc > 0.75"})
    search("latest metric =", {"filter": "metrics.auc = 0.8"})
    search("metric !=", {"filter": "metrics.auc != 0.8"})
    search("absent metric", {"filter": "metrics.nope > 0"})
    search("param =", {"filter": "params.depth = '3'"})
    search("param !=", {"filter": "params.odd != 'no'"})
    search("param LIKE", {"filter": "params.depth LIKE '%3%'"})
    search("tag =", {"filter": "tags.parity = 'even'"})
    search("tag ILIKE", {"filter": "tags.parity ILIKE 'EV%'"})
    search("param IS NULL", {"filter": "params.odd IS NULL"})
    search("param IS NOT NULL", {"filter": "params.odd is not null"})
    search("absent tag IS NULL", {"filter": "tags.nope IS NULL"})
    search("tag IS NOT NULL and param", {"filter": "tags.`parity` IS NOT NULL AND params.depth = '3'"})
    search("metric IS NULL", {"filter": "metrics.auc IS NULL"})
    search("attribute IS NOT NULL", {"filter": "attributes.status IS NOT NULL"})
    search("run name IS NULL", {"filter": "run_name IS NULL"})
    search("dataset IS NULL", {"filter": "datasets.name IS NULL"})
    search("run name", {"filter": "attributes.run_name = 'r1'"})
    search("status", {"filter": "attributes.status = 'FINISHED'"})
    search("start_time", {"filter": f"attributes.start_time >= {T0 + 11}"})
    search("metric and param", {"filter": "metrics.auc < 0.85 AND params.depth != '4'"})
    search("order by metric", {"order_by": ["metrics.auc ASC"]})
    search("order by param DESC", {"order_by": ["params.depth DESC"]})
    search("order by absent tag", {"order_by": ["tags.nope ASC"]})
    search("order by start_time ASC", {"order_by": ["attributes.start_time ASC"]})
    search("order by run_name DESC", {"order_by": ["run_name DESC"]})
    first = search("page 1", {"max_results": 2})
    search("page 2", {"max_results": 2, "page_token": first.get("next_page_token", "")})
    search("metric compared with text", {"filter": "metrics.auc > 'x'"})
    search("param compared with a number", {"filter": "params.depth = 3"})
    search("unknown entity", {"filter": "foo.auc > 1"})
    search("max_results 0", {"max_results": 0})
    search("max_results too large", {"max_results": 50_001})
    search("bad page token", {"page_token": "xyz"})
    side.call("search unknown experiment", "POST", f"{RUNS}/search", {"experiment_ids": ["987654"]})
    side.call("search non-integer experiment", "POST", f"{RUNS}/search", {"experiment_ids": ["abc"]})
    side.call("search no experiments", "POST", f"{RUNS}/search", {})
    side.call("search two experiments", "POST", f"{RUNS}/search",
              {"experiment_ids": [exp_id, first_exp], "filter": "params.depth != '9'"})


def artifacts_and_sources(side: Any) -> None:
    exp_id = _experiment(side, "art")
    run = side.call("create run", "POST", f"{RUNS}/create", {"experiment_id": exp_id, "start_time": T0,
                                                             "run_name": "trainer"})
    info = run.get("run", {}).get("info", {})
    run_id = info.get("run_id", "")
    base = f"{exp_id}/{run_id}/artifacts"
    mlmodel = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
    side.call("upload MLmodel", "PUT", f"{ART}/{base}/model/MLmodel", mlmodel, raw=True)
    side.call("upload data", "PUT", f"{ART}/{base}/model/data/notes.txt", "hello", raw=True)
    side.call("list run root", "GET", ART, {"path": base})
    side.call("list model dir", "GET", ART, {"path": f"{base}/model"})
    side.call("list missing dir", "GET", ART, {"path": f"{base}/nope"})
    side.call("list with ..", "GET", ART, {"path": "../x"})
    side.call("list with inner ..", "GET", ART, {"path": f"{base}/../../x"})
    side.call("download", "GET", f"{ART}/{base}/model/data/notes.txt", {})
    side.call("download missing", "GET", f"{ART}/{base}/model/absent.txt", {})
    side.call("create model", "POST", f"{REG}/create", {"name": "src"})
    side.call("version from the run", "POST", f"{MV}/create",
              {"name": "src", "source": f"runs:/{run_id}/model", "run_id": run_id})
    side.call("version whose run_id is another run", "POST", f"{MV}/create",
              {"name": "src", "source": f"runs:/{run_id}/model", "run_id": "e" * 32})
    side.call("version from the artifact uri", "POST", f"{MV}/create",
              {"name": "src", "source": f"{info.get('artifact_uri', '')}/model", "run_id": run_id})
    side.call("download uri", "GET", f"{MV}/get-download-uri", {"name": "src", "version": "1"})


def runs_held_elsewhere(side: Any) -> None:
    side.call("create model", "POST", f"{REG}/create", {"name": "ext"})
    side.call("version from a run this server does not hold", "POST", f"{MV}/create",
              {"name": "ext", "source": f"runs:/{'a' * 32}/model", "run_id": "a" * 32})
    side.call("version from an unknown run, run_id left out", "POST", f"{MV}/create",
              {"name": "ext", "source": f"runs:/{'b' * 32}/model"})
    side.call("download uri", "GET", f"{MV}/get-download-uri", {"name": "ext", "version": "1"})
    side.call("version from a logged model this server does not hold", "POST", f"{MV}/create",
              {"name": "ext", "source": f"models:/m-{'c' * 32}", "model_id": f"m-{'c' * 32}", "run_id": "d" * 32})


def logged_models(side: Any) -> None:
    exp_id = _experiment(side, "lm")
    run = side.call("create run", "POST", f"{RUNS}/create", {"experiment_id": exp_id, "start_time": T0,
                                                             "run_name": "trainer"})
    run_id = run.get("run", {}).get("info", {}).get("run_id", "")
    created = side.call("create", "POST", "mlflow/logged-models",
                        {"experiment_id": exp_id, "name": "clf", "source_run_id": run_id, "model_type": "sklearn",
                         "tags": [{"key": "a", "value": "1"}], "params": [{"key": "C", "value": "1.0"}]})
    model_id = created.get("model", {}).get("info", {}).get("model_id", "")
    side.call("get", "GET", f"mlflow/logged-models/{model_id}", {})
    side.call("get missing", "GET", f"mlflow/logged-models/m-{'0' * 32}", {})
    side.call("set tags", "PATCH", f"mlflow/logged-models/{model_id}/tags",
              {"tags": [{"key": "b", "value": "2"}]})
    side.call("delete tag", "DELETE", f"mlflow/logged-models/{model_id}/tags/a", {})
    side.call("finalize", "PATCH", f"mlflow/logged-models/{model_id}",
              {"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    side.call("search", "POST", "mlflow/logged-models/search", {"experiment_ids": [exp_id]})
    side.call("search by tag IS NULL", "POST", "mlflow/logged-models/search",
              {"experiment_ids": [exp_id], "filter": "tags.b IS NULL"})
    side.call("run shows its output", "GET", f"{RUNS}/get", {"run_id": run_id})
    side.call("create registry model", "POST", f"{REG}/create", {"name": "lm"})
    side.call("version from the logged model", "POST", f"{MV}/create",
              {"name": "lm", "source": f"models:/{model_id}", "model_id": model_id})


ALL = [registered_models, model_versions, stages, aliases, search_registered_models, search_model_versions,
       bad_requests, experiments, runs, artifacts_and_sources, runs_held_elsewhere, logged_models]
