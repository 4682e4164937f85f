"""Version comparison: selection parsing, comparison rows, CSV, the API, the page and champion vs challenger."""

from __future__ import annotations

import csv
import io
import re

import pytest

from registry import services
from registry.compare import selectors as compare
from registry.errors import InvalidInput, NotFound
from registry.models import Role

pytestmark = pytest.mark.django_db

SIGNATURE = {"inputs": [{"name": "age", "type": "long"}], "outputs": [{"name": "p", "type": "double"}]}


@pytest.fixture
def three(registered_model, make_version):
    """Three versions of churn with metrics, params, datasets, code and signatures that differ."""
    m = registered_model
    v1 = make_version(m, metrics={"auc": 0.80, "loss": 0.50}, params={"depth": "4", "lr": "0.1"},
                      datasets=[{"name": "customers", "digest": "aaa", "role": "train"}],
                      code_repository="git@x:ml/churn", code_commit="1111111", signature=SIGNATURE,
                      files={"model.pkl": b"\x80\x04K\x01."})
    v2 = make_version(m, metrics={"auc": 0.86, "loss": 0.42}, params={"depth": "6", "lr": "0.1"},
                      datasets=[{"name": "customers", "digest": "bbb", "role": "train"}],
                      code_repository="git@x:ml/churn", code_commit="2222222",
                      signature={"inputs": [{"name": "age", "type": "double"}, {"name": "plan", "type": "string"}]})
    v3 = make_version(m, metrics={"auc": 0.84, "loss": 0.40, "latency_ms": 12}, params={"depth": "6", "lr": "0.05"})
    return v1, v2, v3


def test_parse_selection_accepts_refs_and_lists():
    assert compare.parse_selection("churn/3, churn/champion") == [("churn", "3"), ("churn", "champion")]
    assert compare.parse_selection(["a/1", "b.x/2"]) == [("a", "1"), ("b.x", "2")]


@pytest.mark.parametrize("raw, message", [
    ("", "Pick 2 to 5"),
    (None, "Pick 2 to 5"),
    ("churn/1", "at least 2"),
    ("churn/1,churn/2,churn/3,churn/4,churn/5,churn/6", "at most 5"),
    ("churn-1,churn/2", "not a version reference"),
    ("churn/1,/2", "not a version reference"),
    ("churn/1,churn/../2", "not a version reference"),
])
def test_parse_selection_refuses_malformed_input(raw, message):
    with pytest.raises(InvalidInput, match=message):
        compare.parse_selection(raw)


def test_comparison_rows(three, owner):
    result = compare.comparison_get(actor=owner, selection="churn/1,churn/2,churn/3")
    assert [c["label"] for c in result.columns] == ["v1", "v2", "v3"]
    auc = next(r for r in result.metrics if r["name"] == "auc")
    assert auc["values"] == [0.80, 0.86, 0.84] and auc["best"] == [False, True, False]
    assert auc["deltas"][1] == pytest.approx(0.06)
    loss = next(r for r in result.metrics if r["name"] == "loss")
    assert loss["higher_is_better"] is False and loss["best"] == [False, False, True]
    latency = next(r for r in result.metrics if r["name"] == "latency_ms")
    assert latency["values"] == [None, None, 12] and latency["best"] == [False, False, False]
    assert [r["name"] for r in result.changed_params] == ["depth", "lr"]
    assert next(r for r in result.datasets if r["name"] == "train: customers")["values"] == ["aaa", "bbb", None]
    assert next(r for r in result.code if r["name"] == "commit")["changed"] is True
    sig = {r["name"]: r["values"] for r in result.signature}
    assert sig["inputs.age"] == ["long", "double", None] and sig["inputs.plan"] == [None, "string", None]
    overview = {r["name"]: r["values"] for r in result.overview}
    assert overview["artifact files"] == [1, 0, 0] and overview["artifact formats"][0] == "pickle"


def test_comparison_resolves_aliases_and_refuses_duplicates(three, owner, registered_model):
    services.alias_set(model=registered_model, alias="champion", version=three[0], actor=owner)
    result = compare.comparison_get(actor=owner, selection="churn/champion,churn/v2")
    assert [c["ref"] for c in result.columns] == ["churn/1", "churn/2"]
    with pytest.raises(InvalidInput, match="selected twice"):
        compare.comparison_get(actor=owner, selection="churn/champion,churn/1")


def test_comparison_across_models_labels_with_model_name(three, owner, make_version):
    other = services.model_create(actor=owner, name="fraud")
    make_version(other, metrics={"auc": 0.9})
    result = compare.comparison_get(actor=owner, selection="churn/1,fraud/1")
    assert [c["label"] for c in result.columns] == ["churn v1", "fraud v1"]


def test_invisible_versions_are_not_found(three, outsider):
    with pytest.raises(NotFound):
        compare.comparison_get(actor=outsider, selection="churn/1,churn/2")


def test_csv_has_one_row_per_field_and_neutralises_formulas(three, owner):
    services.version_update(version=three[0], actor=owner, params={"depth": "4", "lr": "=HYPERLINK(1)"})
    text = compare.comparison_csv(compare.comparison_get(actor=owner, selection="churn/1,churn/2"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "name", "churn/1", "churn/2"]
    assert ["metric", "auc", "0.8", "0.86"] in rows
    assert ["param", "lr", "'=HYPERLINK(1)", "0.1"] in rows


def test_champion_challenger_verdict(three, owner, registered_model):
    v1, v2, _ = three
    services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    services.alias_set(model=registered_model, alias="challenger", version=v2, actor=owner)
    panel = compare.trend_panel(actor=owner, model=registered_model)
    pair = panel["pair"]
    assert pair["beats"] is True and {r["metric"]: r["verdict"] for r in pair["rows"]} == {
        "auc": "better", "loss": "better"}
    assert panel["marks"] == {1: ["champion"], 2: ["challenger"]}


def test_metric_policy_plug_point_decides(three, owner, registered_model):
    v1, v2, _ = three
    services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
    services.alias_set(model=registered_model, alias="challenger", version=v1, actor=owner)

    def policy(model):
        return [{"metric": "auc", "higher_is_better": True, "margin": 0.1}]

    compare.register_metric_policy(policy)
    try:
        pair = compare.trend_panel(actor=owner, model=registered_model)["pair"]
    finally:
        compare.unregister_metric_policy(policy)
    assert [r["verdict"] for r in pair["rows"]] == ["same"]  # worse by 0.06, within the 0.1 margin
    assert pair["beats"] is False


# ---------------------------------------------------------------------------------------------------- API


def test_api_returns_comparison_json(three, owner, api_client_for):
    response = api_client_for(owner).get("/api/v1/compare", {"versions": "churn/3,churn/1"})
    assert response.status_code == 200
    body = response.json()
    assert body["selection"] == "churn/3,churn/1"
    assert [v["version"] for v in body["versions"]] == [3, 1]
    assert {m["name"] for m in body["metrics"]} == {"auc", "loss", "latency_ms"}


@pytest.mark.parametrize("query, status, code", [
    ({}, 400, "INVALID_PARAMETER_VALUE"),
    ({"versions": "churn/1"}, 400, "INVALID_PARAMETER_VALUE"),
    ({"versions": ",".join(f"churn/{n}" for n in range(1, 7))}, 400, "INVALID_PARAMETER_VALUE"),
    ({"versions": "churn/1;churn/2"}, 400, "INVALID_PARAMETER_VALUE"),
    ({"versions": "churn/1,churn/99"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ({"versions": "churn/1,nope/1"}, 404, "RESOURCE_DOES_NOT_EXIST"),
])
def test_api_bad_input(three, owner, api_client_for, query, status, code):
    response = api_client_for(owner).get("/api/v1/compare", query)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_api_outsider_gets_404_not_a_leak(three, outsider, api_client_for):
    response = api_client_for(outsider).get("/api/v1/compare", {"versions": "churn/1,churn/2"})
    assert response.status_code == 404
    missing = api_client_for(outsider).get("/api/v1/compare", {"versions": "ghost/1,ghost/2"})
    assert missing.json()["error"]["code"] == response.json()["error"]["code"]
    assert missing.json()["error"]["message"].replace("ghost", "churn") == response.json()["error"]["message"]


def test_viewer_may_compare(three, make_user, grant, registered_model, api_client_for):
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    assert api_client_for(viewer).get("/api/v1/compare", {"versions": "churn/1,churn/2"}).status_code == 200


# -------------------------------------------------------------------------------------------------- pages


def test_compare_page_shows_table_chart_and_diff(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"versions": "churn/1,churn/2,churn/3"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="metric-chart"' in html and "vendor/plotly.min.js" in html
    assert 'class="num mono best"' in html
    assert "Download CSV" in html and "format=csv" in html
    assert "depth" in html and "2222222" in html


def test_compare_page_picker_redirects_to_shareable_url(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"v": ["churn/1", "churn/3"]})
    assert response.status_code == 302
    assert response["Location"] == "/compare/?versions=churn%2F1%2Cchurn%2F3"


def test_compare_page_csv_download(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"versions": "churn/1,churn/2", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="comparison-churn-1-churn-2.csv"' in response["Content-Disposition"]


def test_compare_page_without_selection_shows_picker(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"model": "churn"})
    assert response.status_code == 200
    assert response.content.decode().count('name="v"') == 3


def test_compare_page_bad_selection_is_a_readable_400(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"versions": ",".join(f"churn/{n}" for n in range(1, 7))})
    assert response.status_code == 400
    assert "Compare at most 5 versions" in response.content.decode()


def test_compare_page_invisible_is_404(three, outsider, client):
    client.force_login(outsider)
    assert client.get("/compare/", {"versions": "churn/1,churn/2"}).status_code == 404


def test_trends_page_and_partial(three, owner, client, registered_model):
    services.alias_set(model=registered_model, alias="champion", version=three[0], actor=owner)
    services.alias_set(model=registered_model, alias="challenger", version=three[1], actor=owner)
    client.force_login(owner)
    page = client.get("/models/churn/trends/", {"metric": "loss", "x": "auc", "y": "latency_ms"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "The challenger beats the champion" in html and 'id="chart-trend"' in html
    partial = client.get("/models/churn/trends/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    bad = client.get("/models/churn/trends/", {"metric": "nope"})
    assert bad.status_code == 400 and "no numeric metric" in bad.content.decode()


def test_model_page_loads_trend_panel(three, owner, client):
    client.force_login(owner)
    html = client.get("/models/churn/").content.decode()
    assert 'hx-get="/models/churn/trends/?embed=pair"' in html
    embed = client.get("/models/churn/trends/", {"embed": "pair"}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="champion-challenger"' in embed and "chart-trend" not in embed


def test_compare_shows_the_real_scan_and_signature_state(registered_model, make_version, owner, client):
    from registry.pipeline import handlers, signing  # noqa: F401 - installs the job handlers
    from registry.pipeline.jobs import job_run
    from registry.pipeline.scan.services import scan_enqueue
    from tests.registry.pickle_corpus import MALICIOUS

    clean = make_version(registered_model, files={"model.onnx": b"\x08\x07onnx"})
    for artifact in clean.artifacts.all():
        job_run(scan_enqueue(artifact).pk)
    job_run(signing.sign_enqueue(version=clean, actor=owner).pk)
    evil = make_version(registered_model, files={"model.pkl": MALICIOUS["os.system"][0]})
    for artifact in evil.artifacts.all():
        job_run(scan_enqueue(artifact).pk)
    pending = make_version(registered_model, files={"model.pkl": MALICIOUS["os.system"][0] + b" "})
    comparison = compare.comparison_get(actor=owner, selection="churn/1,churn/2,churn/3")
    assert [c["scan_status"] for c in comparison.columns] == ["clean", "quarantined", "pending"]
    assert [c["signature_status"] for c in comparison.columns] == ["verified", "unsigned", "unsigned"]
    assert pending.number == 3
    client.force_login(owner)
    body = client.get("/compare/", {"versions": "churn/1,churn/2"}).content.decode()
    assert "not available" not in body and "quarantined" in body and "verified" in body


def test_a_refused_selection_keeps_the_model_and_the_ticks(three, owner, client):
    client.force_login(owner)
    response = client.get("/compare/", {"v": ["churn/2"], "model": "churn"})
    assert response["Location"] == "/compare/?versions=churn%2F2&model=churn"
    page = client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 400 and body.count('name="v"') == 3
    assert re.search(r'value="churn/2" id="pick-\d+" checked', body)
    assert re.search(r'<option value="churn" selected>', body)
