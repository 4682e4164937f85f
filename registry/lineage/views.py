"""Lineage pages: a node's layered graph (depth, direction, highlights), its impact, and the version embed."""

from __future__ import annotations

import html
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from registry import charts
from registry.errors import DomainError, InvalidInput, NotFound
from registry.lineage import services as lineage
from registry.lineage.layout import layered_layout
from registry.lineage.models import LineageNode, NodeKind
from registry.views.common import get_model, get_version


def _node_or_404(request: HttpRequest, pk: int) -> LineageNode:
    try:
        return lineage.node_get(actor=request.user, node_id=pk)
    except NotFound as error:
        raise Http404(error.message)


def _label(node: LineageNode) -> str:
    if node.kind == NodeKind.MODEL_VERSION and node.model_version_id:
        return f"{node.model_version.model.name} v{node.model_version.number}"
    if node.kind == NodeKind.CODE_COMMIT:
        return node.commit[:10]
    text = node.name if len(node.name) <= 28 else node.name[:27] + "…"
    return f"{text} {node.version}".strip() if node.version and len(node.version) <= 12 else text


def _hover(node: LineageNode) -> str:
    """Return a node's hover text; Plotly renders a small HTML subset, so every user-typed value is escaped."""
    parts = [f"{charts.NODE_LABELS[node.kind]}: {node.name}"]
    if node.version:
        parts.append(f"version {node.version}")
    if node.kind == NodeKind.MODEL_VERSION and node.model_version_id:
        v = node.model_version
        parts.append(f"stage {v.stage}" + (" · deprecated" if v.deprecated else ""))
    for label, value in (("uri", node.uri), ("digest", node.digest[:16]), ("repository", node.repository),
                         ("commit", node.commit[:12]), ("endpoint", node.endpoint), ("id", node.external_id)):
        if value:
            parts.append(f"{label}: {value}")
    if node.row_count is not None:
        parts.append(f"{node.row_count:,} rows")
    if node.contains_personal_data:
        parts.append("contains personal data")
    if node.properties.get("quarantined"):
        parts.append("quarantined")
    return "<br>".join(html.escape(p) for p in parts)


def graph_context(graph: lineage.Graph) -> dict[str, Any]:
    """Lay out a walked graph and return what the graph partial renders (figure, counts, flags)."""
    nodes = graph.nodes
    ids = [n.pk for n in nodes]
    pairs = [(e.upstream_id, e.downstream_id) for e in graph.edges]
    layout = layered_layout(ids, pairs, sort_key={n.pk: f"{n.kind}:{n.name}" for n in nodes})
    rows = []
    for n in nodes:
        x, y = layout.positions[n.pk]
        deprecated = bool(n.model_version_id and n.model_version.deprecated)
        rows.append({"id": n.pk, "kind": n.kind, "label": _label(n), "hover": _hover(n), "x": x, "y": y,
                     "url": reverse("registry:lineage-node", args=[n.pk]), "focus": n.pk == graph.focus.pk,
                     "personal": n.contains_personal_data, "deprecated": deprecated,
                     "quarantined": bool(n.properties.get("quarantined"))})
    kept = [e for e in graph.edges if e.upstream_id != e.downstream_id]
    edges = [{"points": points, "label": f"{e.get_kind_display()}{' (' + e.role + ')' if e.role else ''}"}
             for e, points in zip(kept, layout.polylines, strict=True)]
    figure = charts.lineage_figure(rows, edges, layout.widest, layout.layers)
    return {"graph": graph, "figure": figure, "charts": [figure], "crossings": layout.crossings,
            "kinds": sorted({n.kind for n in nodes}), "node_count": len(nodes), "edge_count": len(edges),
            "depth_choices": sorted({1, 2, 3, 5, 8, 12, lineage.MAX_DEPTH, graph.depth}),
            "direction_choices": [("both", "Upstream and downstream"), ("upstream", "Upstream"),
                                  ("downstream", "Downstream")]}


def _walk_params(request: HttpRequest) -> tuple[str, int]:
    direction = request.GET.get("direction") or "both"
    raw = request.GET.get("depth") or str(lineage.DEFAULT_DEPTH)
    if not raw.isdigit():
        raise InvalidInput(f"Depth must be a whole number from 1 to {lineage.MAX_DEPTH}.")
    return direction, int(raw)


class LineageNodeView(LoginRequiredMixin, View):
    """A lineage node: its details, its layered graph and, for data, every model version it reaches."""

    template_name = "registry/lineage_node.html"
    partial_template_name = "registry/_lineage_graph.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the node page, or only its graph for an htmx request."""
        node = _node_or_404(request, pk)
        status, error = 200, None
        try:
            direction, depth = _walk_params(request)
            graph = lineage.lineage_walk(actor=request.user, node=node, direction=direction, depth=depth)
        except DomainError as exc:
            status, error = exc.status, exc.message
            graph = lineage.lineage_walk(actor=request.user, node=node)
        context = {"node": node, "error": error, "graph_url": reverse("registry:lineage-node", args=[node.pk]),
                   **graph_context(graph)}
        if request.htmx:
            template = self.partial_template_name
        else:
            template = self.template_name
            if node.kind in (NodeKind.DATASET, NodeKind.FEATURE_SET, NodeKind.CODE_COMMIT):
                context["trained"] = lineage.versions_trained_on(actor=request.user, node=node)
            context["impact"] = lineage.lineage_impact(actor=request.user, node=node)
        response = render(request, template, context, status=status)
        patch_vary_headers(response, ("HX-Request",))
        return response


class VersionLineageView(LoginRequiredMixin, View):
    """A version's lineage: the graph partial the version page embeds, or a redirect to the node's page."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the version's graph (htmx) or go to its node page."""
        model = get_model(request, name)
        version = get_version(model, number)
        node = lineage.node_for_version(version=version)
        if node is None:
            if request.htmx:
                return render(request, "registry/_lineage_graph.html", {"node": None})
            raise Http404(f"Version {number} of {model.name!r} has no lineage yet.")
        if not request.htmx:
            return redirect("registry:lineage-node", pk=node.pk)
        node = _node_or_404(request, node.pk)
        try:
            direction, depth = _walk_params(request)
            graph = lineage.lineage_walk(actor=request.user, node=node, direction=direction, depth=depth)
        except DomainError:
            graph = lineage.lineage_walk(actor=request.user, node=node)
        context = {"node": node, "embedded": True, **graph_context(graph),
                   "graph_url": reverse("registry:version-lineage", args=[model.name, version.number])}
        response = render(request, "registry/_lineage_graph.html", context)
        patch_vary_headers(response, ("HX-Request",))
        return response
