"""The lineage graph above GROUP_ABOVE nodes: one node per kind with its count, expanded by kind on request; the
layout's crossing count at a few thousand nodes."""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest

from registry.lineage import selectors as lineage
from registry.lineage.layout import layered_layout
from registry.lineage.models import LineageNode, NodeKind
from tests.lineage_support import neighbourhood_seed

pytestmark = pytest.mark.django_db


def _figure(body: str) -> dict:
    match = re.search(r'<script type="application/json">(.*?)</script>', body, re.S)
    assert match, "no figure in the page"
    return json.loads(match.group(1))


def _group_trace(figure: dict) -> dict | None:
    return next((t for t in figure["data"] if t.get("meta") == "lineage-group"), None)


def test_a_large_neighbourhood_is_drawn_one_node_per_kind(owner, client, django_assert_max_num_queries):
    hood = neighbourhood_seed(owner=owner, size=300)
    client.force_login(owner)
    with django_assert_max_num_queries(14):
        response = client.get(f"/lineage/nodes/{hood.focus.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "300 nodes" in body and "Grouped by kind" in body
    assert body.count("<li><a href=\"/lineage/nodes/") == 1  # only the focus is listed one by one
    assert "grouped: <a href" in body
    groups = _group_trace(_figure(body))
    assert groups is not None
    expected = {f"Dataset ×{hood.counts['dataset']}", f"Model version ×{hood.counts['model_version']}",
                f"Deployment ×{hood.counts['deployment']}", f"Prediction batch ×{hood.counts['prediction_batch']}",
                f"Converted artifact ×{hood.counts['converted_artifact']}"}
    assert set(groups["text"]) == expected
    assert all(url.startswith(f"/lineage/nodes/{hood.focus.pk}/?") and "expand=" in url for url in groups["customdata"])
    # The focus is drawn on its own, the groups are linked by the edges between their members.
    focus_trace = next(t for t in _figure(body)["data"] if t.get("name") == "Feature set")
    assert focus_trace["customdata"] == [f"/lineage/nodes/{hood.focus.pk}/"]
    edge_labels = next(t for t in _figure(body)["data"] if t.get("mode") == "markers" and "text" in t
                       and t.get("marker", {}).get("symbol") == "triangle-right")["text"]
    assert any(label.startswith("produced by ×") for label in edge_labels)
    assert f'data-expand="{NodeKind.MODEL_VERSION}"' in body  # the same expansion as a link, without a pointer


def test_expanding_a_kind_draws_its_nodes_and_keeps_the_others_grouped(owner, client):
    hood = neighbourhood_seed(owner=owner, size=300)
    client.force_login(owner)
    response = client.get(f"/lineage/nodes/{hood.focus.pk}/", {"expand": "deployment", "depth": 3},
                          headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    figure = _figure(body)
    assert "Deployment ×" not in " ".join(_group_trace(figure)["text"])
    deployments = next(t for t in figure["data"] if t.get("name") == "Deployment")
    assert len(deployments["x"]) == hood.counts["deployment"]
    assert all(url.startswith("/lineage/nodes/") and url.endswith("/") for url in deployments["customdata"])
    assert 'name="expand" value="deployment"' in body  # a change of depth keeps the expansion
    assert 'data-collapse="deployment"' in body
    # Expanding every kind draws every node, still through the grouped path.
    kinds = [k for k in hood.counts if k != "feature_set"]
    everything = client.get(f"/lineage/nodes/{hood.focus.pk}/", {"expand": kinds})
    assert _group_trace(_figure(everything.content.decode())) is None


def test_a_small_graph_is_not_grouped(owner, client):
    hood = neighbourhood_seed(owner=owner, size=lineage.GROUP_ABOVE - 5)
    client.force_login(owner)
    body = client.get(f"/lineage/nodes/{hood.focus.pk}/").content.decode()
    assert "Grouped by kind" not in body and _group_trace(_figure(body)) is None


def test_the_version_embed_groups_and_expands_too(owner, client):
    neighbourhood_seed(owner=owner, size=800)
    version = LineageNode.objects.filter(key="hood-model_version-0").get().model_version
    client.force_login(owner)
    url = f"/models/{version.model.name}/versions/{version.number}/lineage/"
    body = client.get(url, {"depth": 5}, headers={"HX-Request": "true"}).content.decode()
    groups = _group_trace(_figure(body))
    assert groups is not None and all(u.startswith(url + "?") for u in groups["customdata"])


def test_bad_expansions_are_refused_with_a_message(owner, client):
    hood = neighbourhood_seed(owner=owner, size=100)
    client.force_login(owner)
    for bad in ("<script>", "x" * 5000, "datasets"):
        response = client.get(f"/lineage/nodes/{hood.focus.pk}/", {"expand": bad}, headers={"HX-Request": "true"})
        body = response.content.decode()
        assert response.status_code == 400
        assert "Cannot expand" in body and "<script>" not in body
        assert _group_trace(_figure(body)) is not None  # the default graph is still drawn


def test_hidden_models_stay_out_of_the_groups(owner, make_user, client):
    hood = neighbourhood_seed(owner=owner, size=800)
    stranger = make_user("stranger")
    client.force_login(stranger)
    body = client.get(f"/lineage/nodes/{hood.focus.pk}/").content.decode()
    groups = _group_trace(_figure(body))
    assert groups is not None and set(groups["text"]) == {f"Dataset ×{hood.counts['dataset']}"}


def _brute_crossings(layout, edges) -> int:
    segments = []
    for line in layout.polylines:
        segments.extend(itertools.pairwise(line))
    total = 0
    for (a0, a1), (b0, b1) in itertools.combinations(segments, 2):
        if a0[0] == b0[0] and (a0[1] - b0[1]) * (a1[1] - b1[1]) < 0:
            total += 1
    return total


def test_crossings_are_counted_exactly():
    rng = random.Random(5)
    for size in (8, 30, 80):
        nodes = list(range(size))
        edges = list({(i, j) for i in range(size) for j in rng.sample(range(size), 3) if i < j})
        layout = layered_layout(nodes, edges)
        assert layout.crossings == _brute_crossings(layout, edges)


def test_layout_of_2000_nodes_is_readable():
    rng = random.Random(2)
    layers = [range(0, 200), range(200, 500), range(500, 1200), range(1200, 2000)]
    edges = [(rng.choice(layers[i - 1]), n) for i in range(1, 4) for n in layers[i] for _ in range(2)]
    layout = layered_layout(list(range(2000)), edges)
    assert layout.layers == 4 and len(set(layout.positions.values())) == 2000
