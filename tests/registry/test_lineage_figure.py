"""The lineage figure's shape for Plotly: edges in one stroke per connected set, arrows only on small graphs, one
marker style per trace, and the walked graph's list and links."""

from __future__ import annotations

import itertools
import random

import pytest
from django.urls import reverse

from registry import charts
from registry.lineage import selectors as lineage
from tests.lineage_support import neighbourhood_seed


def _pieces(xs: list) -> list[list[int]]:
    """Split a line trace's point indexes at its None gaps."""
    pieces = [[]]
    for i, x in enumerate(xs):
        if x is None:
            pieces.append([])
        else:
            pieces[-1].append(i)
    return [p for p in pieces if p]


def _segments(xs: list, ys: list) -> set[frozenset]:
    out = set()
    for piece in _pieces(xs):
        for a, b in itertools.pairwise(piece):
            out.add(frozenset({(xs[a], ys[a]), (xs[b], ys[b])}))
    return out


def test_strokes_draw_every_polyline_once_out_and_back_per_connected_set():
    rng = random.Random(7)
    polylines = []
    for _ in range(300):  # two separate random DAG-like sets, with bends (dummy points) on some edges
        side = rng.choice((0, 100))
        u, v = rng.sample(range(40), 2)
        a, b = (side + min(u, v) // 10, float(min(u, v))), (side + max(u, v) // 10 + 1, float(max(u, v)))
        bends = [((a[0] + b[0]) / 2, rng.random() * 40)] if rng.random() < 0.3 else []
        polylines.append([a, *bends, b])
    xs, ys = charts._strokes(polylines)
    assert len(xs) == len(ys)
    assert len(_pieces(xs)) == 2  # one stroke per connected set, not one per edge
    wanted = {frozenset(pair) for line in polylines for pair in itertools.pairwise(line)}
    assert _segments(xs, ys) == wanted  # every segment drawn, and nothing that is not an edge
    steps = sum(len(line) - 1 for line in polylines)
    assert len(xs) == 2 * steps + 3  # each step out and back, plus each set's start and the gap between them


def _figure(size: int, owner, expand: frozenset[str]) -> dict:
    hood = neighbourhood_seed(owner=owner, size=size)
    node = lineage.node_get(actor=owner, node_id=hood.focus.pk)
    graph = lineage.lineage_walk(actor=owner, node=node)
    return lineage.graph_context(graph, graph_url="/g/", expand=expand)


@pytest.mark.django_db
def test_a_large_drawn_graph_has_no_arrows_and_names_edges_on_its_nodes(owner):
    kinds = frozenset({"dataset", "model_version", "converted_artifact", "deployment", "prediction_batch"})
    context = _figure(400, owner, kinds)
    data = context["figure"]["data"]
    assert not any(t.get("marker", {}).get("symbol") == "triangle-right" for t in data)
    lines = data[0]
    assert lines["mode"] == "lines" and len(_pieces(lines["x"])) == 1
    batches = next(t for t in data if t.get("name") == "Prediction batch")
    assert all("<br>from: produced by" in h for h in batches["hovertext"])
    assert "text" not in batches  # names show on hover only: no labels to send
    # One marker size for a trace without the focus; the focus's trace still marks it out.
    assert batches["marker"]["size"] == 13
    focus = next(t for t in data if t.get("name") == "Feature set")
    assert focus["marker"]["size"] == [20]
    # The list beside the graph links every drawn node to its page.
    assert len(context["listed"]) == context["node_count"]
    for row in context["listed"][:50]:
        assert row["url"] == reverse("registry:lineage-node", args=[int(row["url"].split("/")[-2])])
    assert set(batches["customdata"]) <= {row["url"] for row in context["listed"]}


@pytest.mark.django_db
def test_a_small_graph_keeps_its_arrows_with_escaped_edge_kinds(owner):
    context = _figure(60, owner, frozenset())  # grouped: a handful of nodes
    data = context["figure"]["data"]
    arrows = next(t for t in data if t.get("marker", {}).get("symbol") == "triangle-right")
    assert arrows["text"] and len(arrows["x"]) == len(arrows["text"])
    assert not any("from:" in h for t in data for h in t.get("hovertext", []))


def test_edge_roles_are_escaped_for_plotly():
    assert lineage._edge_label({"trained on (<b>x</b>)": 2}) == "trained on (&lt;b&gt;x&lt;/b&gt;) ×2"
