"""Lineage: auto-fill from versions, typed edges, cycle refusal, recursive walks and impact, API, pages, layout."""

from __future__ import annotations

import pytest

from registry import services
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.lineage import selectors as lineage_selectors
from registry.lineage import services as lineage
from registry.lineage.layout import layered_layout
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import Role

pytestmark = pytest.mark.django_db

DATASETS = [{"name": "customers", "uri": "s3://d/customers", "digest": "aaa", "role": "train"},
            {"name": "holdout", "uri": "s3://d/holdout", "digest": "bbb", "role": "test"}]


def _dataset(actor, name="raw", **fields):
    return lineage.node_create(actor=actor, kind=NodeKind.DATASET, name=name, **fields).obj


@pytest.fixture
def version(registered_model, make_version):
    return make_version(registered_model, datasets=DATASETS, code_repository="git@x:ml/churn", code_commit="abc1234")


# --------------------------------------------------------------------------------------------- auto-fill


def test_version_create_fills_lineage(version):
    node = LineageNode.objects.get(model_version=version)
    assert node.kind == NodeKind.MODEL_VERSION and node.model_id == version.model_id
    edges = {(e.upstream.kind, e.upstream.name, e.kind, e.role) for e in LineageEdge.objects.filter(downstream=node)}
    assert edges == {("dataset", "customers", "trained_on", "train"), ("dataset", "holdout", "trained_on", "test"),
                     ("code_commit", "git@x:ml/churn@abc1234", "built_from_code", "")}


def test_versions_share_dataset_nodes(version, registered_model, make_version):
    make_version(registered_model, datasets=DATASETS[:1])
    assert LineageNode.objects.filter(kind=NodeKind.DATASET, name="customers").count() == 1
    customers = LineageNode.objects.get(kind=NodeKind.DATASET, name="customers")
    assert LineageEdge.objects.filter(upstream=customers).count() == 2


def test_changing_the_commit_repoints_the_code_edge(version, owner):
    services.version_update(version=version, actor=owner, code_commit="fff9999")
    node = LineageNode.objects.get(model_version=version)
    code = LineageEdge.objects.filter(downstream=node, kind=EdgeKind.BUILT_FROM_CODE).select_related("upstream")
    assert [e.upstream.commit for e in code] == ["fff9999"]


def test_backfill_is_idempotent(version):
    LineageNode.objects.all().delete()
    assert lineage.lineage_backfill() == 3
    assert lineage.lineage_backfill() == 0
    assert LineageNode.objects.count() == 4


def test_deleting_a_version_removes_its_node(version, owner):
    services.version_delete(version=version, actor=owner)
    assert not LineageNode.objects.filter(kind=NodeKind.MODEL_VERSION).exists()
    assert LineageNode.objects.filter(kind=NodeKind.DATASET).count() == 2


# ------------------------------------------------------------------------------------------ nodes, edges


def test_node_create_is_idempotent_and_audited(owner, registered_model, captured_events):
    first = lineage.node_create(actor=owner, kind="dataset", name="raw", uri="s3://raw", digest="d1", row_count=10,
                                contains_personal_data=True, schema={"cols": ["email"]})
    again = lineage.node_create(actor=owner, kind="dataset", name="raw", uri="s3://raw", digest="d1")
    assert first.created and not again.created and first.obj.pk == again.obj.pk
    assert [e.action for e in captured_events if e.action.startswith("lineage")] == ["lineage_node.created"]


def test_edge_rules_and_roles(owner, version):
    raw = _dataset(owner)
    mv = LineageNode.objects.get(model_version=version)
    with pytest.raises(InvalidInput, match="joins"):
        lineage.edge_create(actor=owner, upstream=mv, downstream=raw, kind=EdgeKind.TRAINED_ON)
    with pytest.raises(InvalidInput, match="role"):
        lineage.edge_create(actor=owner, upstream=raw, downstream=mv, kind=EdgeKind.TRAINED_ON, role="bogus")
    with pytest.raises(InvalidInput, match="Unknown edge kind"):
        lineage.edge_create(actor=owner, upstream=raw, downstream=mv, kind="feeds")
    edge = lineage.edge_create(actor=owner, upstream=raw, downstream=mv, kind=EdgeKind.TRAINED_ON).obj
    assert edge.role == "train"


def test_cycles_are_refused(owner, registered_model):
    a, b, c = (_dataset(owner, name) for name in "abc")
    lineage.edge_create(actor=owner, upstream=a, downstream=b, kind=EdgeKind.DERIVED_FROM)
    lineage.edge_create(actor=owner, upstream=b, downstream=c, kind=EdgeKind.DERIVED_FROM)
    with pytest.raises(InvalidState, match="cycle"):
        lineage.edge_create(actor=owner, upstream=c, downstream=a, kind=EdgeKind.DERIVED_FROM)
    with pytest.raises(InvalidState, match="cycle"):
        lineage.edge_create(actor=owner, upstream=a, downstream=a, kind=EdgeKind.DERIVED_FROM)
    assert LineageEdge.objects.filter(upstream=c).count() == 0


def test_only_contributors_register_lineage(make_user, registered_model, grant, version):
    viewer, stranger = make_user("viewer"), make_user("stranger")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        _dataset(viewer)
    with pytest.raises(Forbidden):
        _dataset(stranger)
    mv = LineageNode.objects.get(model_version=version)
    raw = _dataset(registered_model.owner)
    with pytest.raises(Forbidden):
        lineage.edge_create(actor=viewer, upstream=raw, downstream=mv, kind=EdgeKind.TRAINED_ON)
    with pytest.raises(NotFound):
        lineage.edge_create(actor=stranger, upstream=raw, downstream=mv, kind=EdgeKind.TRAINED_ON)


# -------------------------------------------------------------------------------------- walks and impact


@pytest.fixture
def pipeline(owner, version, registered_model):
    """raw -> customers -> churn v1 -> deployment -> predictions; plus a hidden model trained on customers."""
    raw = _dataset(owner, "raw", contains_personal_data=True)
    customers = LineageNode.objects.get(kind=NodeKind.DATASET, name="customers")
    lineage.edge_create(actor=owner, upstream=raw, downstream=customers, kind=EdgeKind.DERIVED_FROM)
    mv = LineageNode.objects.get(model_version=version)
    deployment = lineage.node_create(actor=owner, kind=NodeKind.DEPLOYMENT, name="churn-prod",
                                     external_id="ep-1", model=registered_model).obj
    lineage.edge_create(actor=owner, upstream=mv, downstream=deployment, kind=EdgeKind.DEPLOYED_AS)
    batch = lineage.node_create(actor=owner, kind=NodeKind.PREDICTION_BATCH, name="2026-11-25",
                                endpoint="churn-prod", model=registered_model).obj
    lineage.edge_create(actor=owner, upstream=deployment, downstream=batch, kind=EdgeKind.PRODUCED)
    secret_owner = services.model_create(actor=owner, name="secret")
    secret_v = services.version_create(model=secret_owner, actor=owner, datasets=DATASETS[:1])
    return {"raw": raw, "customers": customers, "mv": mv, "deployment": deployment, "batch": batch,
            "secret": LineageNode.objects.get(model_version=secret_v)}


def test_walk_downstream_to_a_depth(owner, pipeline):
    graph = lineage_selectors.lineage_walk(actor=owner, node=pipeline["raw"], direction="downstream", depth=2)
    depths = {n.name if n.kind != "model_version" else f"{n.name} v{n.version}": graph.depths[n.pk]
              for n in graph.nodes}
    assert depths == {"raw": 0, "customers": 1, "churn v1": 2, "secret v1": 2}
    assert {(e.upstream_id, e.downstream_id) for e in graph.edges} >= {
        (pipeline["raw"].pk, pipeline["customers"].pk), (pipeline["customers"].pk, pipeline["mv"].pk)}


def test_walk_upstream_and_both(owner, pipeline):
    up = lineage_selectors.lineage_walk(actor=owner, node=pipeline["batch"], direction="upstream", depth=10)
    assert {n.pk for n in up.nodes} >= {pipeline["raw"].pk, pipeline["mv"].pk, pipeline["deployment"].pk}
    assert up.depths[pipeline["raw"].pk] == -4
    both = lineage_selectors.lineage_walk(actor=owner, node=pipeline["mv"], direction="both", depth=1)
    assert both.depths[pipeline["deployment"].pk] == 1 and both.depths[pipeline["customers"].pk] == -1


def test_impact_lists_versions_and_deployments(owner, pipeline):
    rows = lineage_selectors.lineage_impact(actor=owner, node=pipeline["raw"])
    assert {(r["kind"], r["model"], r["number"]) for r in rows} == {
        ("model_version", "churn", 1), ("model_version", "secret", 1), ("deployment", "churn", None)}


def test_impact_and_walk_hide_models_the_actor_may_not_see(pipeline, make_user, grant, registered_model):
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    rows = lineage_selectors.lineage_impact(actor=viewer, node=pipeline["raw"])
    assert {r["model"] for r in rows} == {"churn"}
    graph = lineage_selectors.lineage_walk(actor=viewer, node=pipeline["customers"], direction="downstream", depth=5)
    assert pipeline["secret"].pk not in {n.pk for n in graph.nodes}
    with pytest.raises(NotFound):
        lineage_selectors.node_get(actor=viewer, node_id=pipeline["secret"].pk)


def test_walk_refuses_bad_parameters(owner, pipeline):
    with pytest.raises(InvalidInput):
        lineage_selectors.lineage_walk(actor=owner, node=pipeline["raw"], direction="sideways")
    with pytest.raises(InvalidInput):
        lineage_selectors.lineage_walk(actor=owner, node=pipeline["raw"], depth=0)
    with pytest.raises(InvalidInput):
        lineage_selectors.lineage_walk(actor=owner, node=pipeline["raw"], depth=lineage_selectors.MAX_DEPTH + 1)


def test_walk_is_one_query_plus_loading(owner, pipeline, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        lineage_selectors.lineage_walk(actor=owner, node=pipeline["raw"], direction="both", depth=5)


# -------------------------------------------------------------------------------------------------- API


def test_api_register_and_query(owner, version, api_client_for):
    client = api_client_for(owner)
    raw = client.post("/api/v1/lineage/nodes", {"kind": "dataset", "name": "raw", "uri": "s3://raw",
                                                "digest": "sha256:1", "row_count": 1200,
                                                "schema": {"fields": ["email", "plan"]},
                                                "contains_personal_data": True}, format="json")
    assert raw.status_code == 201 and raw.json()["contains_personal_data"] is True
    again = client.post("/api/v1/lineage/nodes", {"kind": "dataset", "name": "raw", "uri": "s3://raw",
                                                  "digest": "sha256:1"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == raw.json()["id"]
    mv = client.post("/api/v1/lineage/nodes", {"kind": "model_version", "model": "churn", "model_version": "1"},
                     format="json")
    assert mv.status_code == 200 and mv.json()["model_version"]["version"] == 1
    edge = client.post("/api/v1/lineage/edges", {"upstream": raw.json()["id"], "downstream": mv.json()["id"],
                                                 "kind": "trained_on", "role": "validation"}, format="json")
    assert edge.status_code == 201 and edge.json()["role"] == "validation"
    graph = client.get(f"/api/v1/lineage/nodes/{raw.json()['id']}", {"direction": "downstream", "depth": "2"})
    assert graph.status_code == 200
    assert {n["kind"] for n in graph.json()["nodes"]} == {"dataset", "model_version"}
    impact = client.get(f"/api/v1/lineage/nodes/{raw.json()['id']}/impact")
    assert impact.json()["model_versions"] == 1 and impact.json()["results"][0]["model"] == "churn"
    by_version = client.get("/api/v1/lineage/models/churn/versions/1", {"direction": "upstream"})
    assert by_version.status_code == 200 and by_version.json()["node"]["id"] == mv.json()["id"]


def test_api_bad_input(owner, version, api_client_for):
    client = api_client_for(owner)
    a = client.post("/api/v1/lineage/nodes", {"kind": "dataset", "name": "a"}, format="json").json()["id"]
    b = client.post("/api/v1/lineage/nodes", {"kind": "dataset", "name": "b"}, format="json").json()["id"]
    assert client.post("/api/v1/lineage/edges", {"upstream": a, "downstream": b, "kind": "derived_from"},
                       format="json").status_code == 201
    cycle = client.post("/api/v1/lineage/edges", {"upstream": b, "downstream": a, "kind": "derived_from"},
                        format="json")
    assert cycle.status_code == 409 and "cycle" in cycle.json()["error"]["message"]
    unknown = client.post("/api/v1/lineage/edges", {"upstream": a, "downstream": 999999, "kind": "derived_from"},
                          format="json")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert client.get("/api/v1/lineage/nodes/999999").status_code == 404
    assert client.get("/api/v1/lineage/nodes/999999/impact").status_code == 404
    assert client.get(f"/api/v1/lineage/nodes/{a}", {"depth": "x"}).status_code == 400
    assert client.get(f"/api/v1/lineage/nodes/{a}", {"direction": "sideways"}).status_code == 400
    assert client.post("/api/v1/lineage/nodes", {"kind": "planet", "name": "x"}, format="json").status_code == 400
    assert client.post("/api/v1/lineage/nodes", {"kind": "dataset"}, format="json").status_code == 400
    assert client.post("/api/v1/lineage/nodes", {"kind": "dataset", "name": "x", "model": "churn"},
                       format="json").status_code == 400
    assert client.post("/api/v1/lineage/nodes", {"kind": "model_version", "model": "churn", "model_version": "9"},
                       format="json").status_code == 404


def test_api_outsider_sees_404_for_scoped_nodes(version, outsider, api_client_for):
    node = LineageNode.objects.get(model_version=version)
    client = api_client_for(outsider)
    hidden = client.get(f"/api/v1/lineage/nodes/{node.pk}")
    missing = client.get("/api/v1/lineage/nodes/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(str(node.pk), "N") == \
        missing.json()["error"]["message"].replace("999999", "N")
    dataset = LineageNode.objects.get(kind="dataset", name="customers")
    impact = client.get(f"/api/v1/lineage/nodes/{dataset.pk}/impact")
    assert impact.status_code == 200 and impact.json()["results"] == [] and impact.json()["total"] == 0
    assert client.get("/api/v1/lineage/models/churn/versions/1").status_code == 404


# ------------------------------------------------------------------------------------------------ pages


def test_lineage_page_shows_graph_and_impact(owner, pipeline, client):
    client.force_login(owner)
    response = client.get(f"/lineage/nodes/{pipeline['customers'].pk}/", {"direction": "both", "depth": "5"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-lineage-chart" in html and "vendor/plotly.min.js" in html
    assert 'id="trained-on"' in html and "churn v1" in html and "churn-prod" in html
    partial = client.get(f"/lineage/nodes/{pipeline['customers'].pk}/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.content.decode()
    bad = client.get(f"/lineage/nodes/{pipeline['customers'].pk}/", {"depth": "99"})
    assert bad.status_code == 400 and "depth must be an integer" in bad.content.decode()


def test_lineage_page_is_404_for_hidden_and_unknown(version, outsider, client):
    client.force_login(outsider)
    node = LineageNode.objects.get(model_version=version)
    assert client.get(f"/lineage/nodes/{node.pk}/").status_code == 404
    assert client.get("/lineage/nodes/999999/").status_code == 404


def test_version_page_embeds_lineage(owner, version, client):
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/").content.decode()
    assert 'hx-get="/models/churn/versions/1/lineage/"' in html  # the Lineage tab
    embed = client.get("/models/churn/versions/1/lineage/",
                       headers={"HX-Request": "true", "HX-Target": "lineage-graph"})
    assert embed.status_code == 200 and "Open full lineage" in embed.content.decode()
    assert "<html" not in embed.content.decode()
    page = client.get("/models/churn/versions/1/lineage/")  # the version page on its Lineage tab
    body = page.content.decode()
    assert page.status_code == 200 and "Open full lineage" in body and 'id="tab-lineage"' in body
    assert 'href="/lineage/nodes/' in body


# ----------------------------------------------------------------------------------------------- layout


def test_layered_layout_orders_layers_and_removes_crossings():
    edges = [("a", "d"), ("b", "c"), ("c", "e"), ("d", "f"), ("a", "f")]
    layout = layered_layout(list("abcdef"), edges)
    x = {n: p[0] for n, p in layout.positions.items()}
    assert x["a"] == 0 and x["d"] == 1 and x["f"] == 2 and x["e"] == 2
    assert layout.crossings == 0
    assert len(layout.polylines[4]) == 3  # a -> f spans two layers: one dummy bend


def test_layout_of_200_nodes_is_readable():
    nodes = list(range(200))
    edges = [(i, j) for i in range(200) for j in (i * 3 + 1, i * 7 + 2) if j < 200]
    layout = layered_layout(nodes, edges)
    assert len(layout.positions) == 200
    assert len({layout.positions[n] for n in nodes}) == 200  # no two nodes on the same spot


def test_a_version_without_lineage_shows_its_own_node_and_why_not_a_404(version, owner, client):
    LineageNode.objects.filter(model_version=version).delete()  # as for versions registered before lineage existed
    client.force_login(owner)
    response = client.get("/models/churn/versions/1/lineage/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "churn v1" in body and "No lineage is recorded for this version yet" in body
    assert 'href="/models/churn/versions/1/"' in body
    partial = client.get("/models/churn/versions/1/lineage/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "No lineage recorded for this version yet." in partial.content.decode()
