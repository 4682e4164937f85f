"""Lineage impact as users ask for it: counts per kind and per model, one ordered page at a time, only what the
caller may see, and a cached walk that every written lineage edge retires."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.core.cache import caches

from registry import access, services
from registry.errors import InvalidInput
from registry.lineage import selectors as lineage_selectors
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, LineageNode, NodeKind
from registry.models import Role
from registry.pagination import encode_cursor

pytestmark = pytest.mark.django_db


@pytest.fixture
def reach(owner, make_user, grant):
    """A dataset `raw` feeding alpha v1-v3, beta v1-v2 (beta v2 deployed twice) and hidden v1; a viewer of alpha
    and beta who may not see `hidden`, which also has a deployment."""
    nodes = {name: services.model_create(actor=owner, name=name) for name in ("beta", "alpha", "hidden")}
    raw = lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="raw").obj  # a contributor registers data
    for name, count in (("beta", 2), ("alpha", 3), ("hidden", 1)):
        model = nodes[name]
        for _ in range(count):
            version = services.version_create(model=model, actor=owner)
            node, _ = lineage.version_node_ensure(version)
            lineage.edge_create(actor=owner, upstream=raw, downstream=node, kind=EdgeKind.TRAINED_ON)
            nodes[f"{name} v{version.number}"] = node
    for name, version in (("beta-blue", "beta v2"), ("beta-green", "beta v2"), ("hidden-prod", "hidden v1")):
        model = nodes[version.split()[0]]
        deployment = lineage.node_create(actor=owner, kind=NodeKind.DEPLOYMENT, name=name, model=model).obj
        lineage.edge_create(actor=owner, upstream=nodes[version], downstream=deployment, kind=EdgeKind.DEPLOYED_AS)
        nodes[name] = deployment
    viewer = make_user("viewer")
    grant(nodes["alpha"], viewer, Role.VIEWER)
    grant(nodes["beta"], viewer, Role.VIEWER)
    return {"raw": raw, "viewer": viewer, **nodes}


def _label(row):
    return f"{row['model']} v{row['number']}" if row["kind"] == NodeKind.MODEL_VERSION else row["name"]


def test_counts_per_kind_and_model_and_the_order_of_the_list(owner, reach):
    impact = lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"])
    assert (impact["total"], impact["model_versions"], impact["deployments"]) == (9, 6, 3)
    assert impact["models"] == [{"model": "alpha", "model_versions": 3, "deployments": 0},
                                {"model": "beta", "model_versions": 2, "deployments": 2},
                                {"model": "hidden", "model_versions": 1, "deployments": 1}]
    assert [_label(r) for r in impact["results"]] == [
        "alpha v1", "alpha v2", "alpha v3", "beta v1", "beta v2", "hidden v1", "beta-blue", "beta-green",
        "hidden-prod"]
    assert impact["next_cursor"] is None
    first = impact["results"][0]
    assert first == {"id": reach["alpha v1"].pk, "kind": "model_version", "name": "alpha", "version": "1",
                     "external_id": "", "model": "alpha", "number": 1, "stage": "None", "deprecated": False}


def test_pages_follow_one_another_without_gaps_or_repeats(owner, reach):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"max_results": "4", **({"cursor": cursor} if cursor else {})}
        impact = lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"], params=params)
        assert impact["total"] == 9  # every page carries the counts
        seen += [_label(r) for r in impact["results"]]
        pages += 1
        cursor = impact["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 9
    whole = lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"])
    assert seen == [_label(r) for r in whole["results"]]


def test_a_model_the_caller_cannot_see_is_neither_listed_nor_counted(reach):
    impact = lineage_selectors.lineage_impact_summary(actor=reach["viewer"], node=reach["raw"],
                                                      params={"max_results": "3"})
    assert (impact["total"], impact["model_versions"], impact["deployments"]) == (7, 5, 2)
    assert [m["model"] for m in impact["models"]] == ["alpha", "beta"]
    rest = lineage_selectors.lineage_impact_summary(actor=reach["viewer"], node=reach["raw"],
                                                    params={"cursor": impact["next_cursor"]})
    labels = [_label(r) for r in impact["results"] + rest["results"]]
    assert labels == ["alpha v1", "alpha v2", "alpha v3", "beta v1", "beta v2", "beta-blue", "beta-green"]


def test_the_summary_reads_a_fixed_number_of_queries(owner, reach, django_assert_num_queries):
    # inside a test's transaction the cache is skipped: walk, visible models, the page's nodes
    with django_assert_num_queries(3):
        lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"])


@pytest.mark.parametrize("params", [{"cursor": "not-a-cursor"}, {"cursor": encode_cursor([9, 0, "a", 1, 1])},
                                    {"cursor": encode_cursor(["x", 0, "a", 1, 1])},
                                    {"cursor": encode_cursor([0, 0, 5, 1, 1])}, {"max_results": "0"},
                                    {"max_results": "lots"}])
def test_bad_page_parameters_are_refused(owner, reach, params):
    with pytest.raises(InvalidInput):
        lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"], params=params)


# -------------------------------------------------------------------------------------------------- API


def test_api_answers_counts_and_the_first_page_then_the_next(reach, api_client_for):
    client = api_client_for(reach["viewer"])
    url = f"/api/v1/lineage/nodes/{reach['raw'].pk}/impact"
    first = client.get(url, {"max_results": "5"})
    assert first.status_code == 200
    body = first.json()
    assert body["node"]["id"] == reach["raw"].pk
    assert (body["total"], body["model_versions"], body["deployments"]) == (7, 5, 2)
    assert body["models"] == [{"model": "alpha", "model_versions": 3, "deployments": 0},
                              {"model": "beta", "model_versions": 2, "deployments": 2}]
    assert [_label(r) for r in body["results"]] == ["alpha v1", "alpha v2", "alpha v3", "beta v1", "beta v2"]
    second = client.get(url, {"max_results": "5", "cursor": body["next_cursor"]}).json()
    assert [_label(r) for r in second["results"]] == ["beta-blue", "beta-green"] and second["next_cursor"] is None
    assert "hidden" not in first.content.decode() + str(second)


def test_api_bad_cursor_is_a_400_in_the_error_shape(reach, api_client_for):
    client = api_client_for(reach["viewer"])
    url = f"/api/v1/lineage/nodes/{reach['raw'].pk}/impact"
    bad = client.get(url, {"cursor": "%%%"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "Invalid page cursor."
    assert client.get(url, {"max_results": "1001"}).status_code == 400


# ------------------------------------------------------------------------------------------------- page


def _impact_section(response) -> str:
    html = response.content.decode()
    start = html.index('id="impact"')
    return html[start:html.index("</section>", start)]


def test_page_shows_counts_and_pages_through_the_impact(owner, reach, client):
    client.force_login(owner)
    url = f"/lineage/nodes/{reach['raw'].pk}/"
    response = client.get(url, {"max_results": "4"})
    assert response.status_code == 200
    first = _impact_section(response)
    assert "6 model versions and 3 deployments downstream, across 3 models" in first
    assert "alpha v3" in first and "beta v1" in first and "beta v2" not in first
    assert "Next →" in first and "4 of 9" in first
    impact = lineage_selectors.lineage_impact_summary(actor=owner, node=reach["raw"], params={"max_results": "4"})
    assert f"cursor={quote(impact['next_cursor'])}#impact" in first
    second = _impact_section(client.get(url, {"max_results": "4", "cursor": impact["next_cursor"]}))
    assert "beta v2" in second and "hidden v1" in second and "alpha v1" not in second and "← First" in second
    bad = client.get(url, {"cursor": "%%%"})
    assert bad.status_code == 400
    assert "Invalid page cursor." in _impact_section(bad) and "alpha v1" in _impact_section(bad)  # the first page


# ------------------------------------------------------------------------------------------------ cache


@pytest.mark.django_db(transaction=True)
def test_the_walk_is_cached_until_a_lineage_edge_is_written(owner, reach, django_assert_num_queries):
    for alias in ("default", "local"):
        caches[alias].clear()
    raw = reach["raw"]
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=raw)["total"] == 9
    caches["local"].clear()  # the walk sits in the shared cache: one process's walk serves every process
    with django_assert_num_queries(2):  # visible models and the page's nodes: the walk comes from the cache
        assert lineage_selectors.lineage_impact_summary(actor=owner, node=raw)["total"] == 9
    alpha = reach["alpha"]
    version = services.version_create(model=alpha, actor=owner)
    node, _ = lineage.version_node_ensure(version)
    lineage.edge_create(actor=owner, upstream=raw, downstream=node, kind=EdgeKind.TRAINED_ON)
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=raw)["model_versions"] == 7
    services.version_delete(version=version, actor=owner)  # its node and edges go with it
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=raw)["model_versions"] == 6
    # who may see a model is checked on every call, never cached
    viewer = reach["viewer"]
    assert lineage_selectors.lineage_impact_summary(actor=viewer, node=raw)["total"] == 7
    access.role_revoke(model=reach["beta"], actor=owner, user=viewer)
    assert lineage_selectors.lineage_impact_summary(actor=viewer, node=raw)["total"] == 3
    services.model_delete(model=reach["alpha"], actor=owner)  # its nodes and edges go with it
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=raw)["models"] == [
        {"model": "beta", "model_versions": 2, "deployments": 2},
        {"model": "hidden", "model_versions": 1, "deployments": 1}]


@pytest.mark.django_db(transaction=True)
def test_an_edge_deleted_alone_retires_the_walk_too(owner, registered_model, make_version):
    for alias in ("default", "local"):
        caches[alias].clear()
    version = make_version(registered_model, code_repository="git@x:ml/churn", code_commit="abc1234")
    commit = LineageNode.objects.get(kind=NodeKind.CODE_COMMIT)
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=commit)["model_versions"] == 1
    services.version_update(version=version, actor=owner, code_commit="")  # the filled code edge goes, alone
    assert lineage_selectors.lineage_impact_summary(actor=owner, node=commit)["model_versions"] == 0
