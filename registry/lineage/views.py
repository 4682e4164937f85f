"""Lineage pages: a node's layered graph (depth, direction, highlights), its impact, and the version embed."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from registry.errors import DomainError, InvalidInput, NotFound
from registry.lineage import selectors as lineage
from registry.lineage.models import LineageNode, NodeKind
from registry.views.common import get_model, get_version
from registry.views.version_tabs import version_tab_response, wants_panel


def _node_or_404(request: HttpRequest, pk: int) -> LineageNode:
    try:
        return lineage.node_get(actor=request.user, node_id=pk)
    except NotFound as error:
        raise Http404(error.message)


def _walk_params(request: HttpRequest) -> tuple[str, int]:
    direction = request.GET.get("direction") or "both"
    raw = request.GET.get("depth") or str(lineage.DEFAULT_DEPTH)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):  # '³'.isdigit() too, but int() refuses it
        raise InvalidInput(f"Depth must be a whole number from 1 to {lineage.MAX_DEPTH}.")
    return direction, int(raw)


def _graph(request: HttpRequest, node: LineageNode, graph_url: str) -> tuple[dict, int, str | None]:
    """Walk and lay out `node`'s graph from the query (direction, depth, expanded kinds); bad input draws the
    default graph with the message."""
    try:
        direction, depth = _walk_params(request)
        expand = lineage.expand_kinds(request.GET.getlist("expand"))
        graph = lineage.lineage_walk(actor=request.user, node=node, direction=direction, depth=depth)
    except DomainError as exc:
        graph = lineage.lineage_walk(actor=request.user, node=node)
        return lineage.graph_context(graph, graph_url=graph_url), exc.status, exc.message
    return lineage.graph_context(graph, graph_url=graph_url, expand=expand), 200, None


class LineageNodeView(LoginRequiredMixin, View):
    """A lineage node: its details, its layered graph and, for data, every model version it reaches."""

    template_name = "registry/lineage_node.html"
    partial_template_name = "registry/_lineage_graph.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the node page, or only its graph for an htmx request."""
        node = _node_or_404(request, pk)
        graph_url = reverse("registry:lineage-node", args=[node.pk])
        drawn, status, error = _graph(request, node, graph_url)
        context = {"node": node, "error": error, "graph_url": graph_url, **drawn}
        if request.htmx:
            template = self.partial_template_name
        else:
            template = self.template_name
            if node.kind in (NodeKind.DATASET, NodeKind.FEATURE_SET, NodeKind.CODE_COMMIT):
                context["trained"] = lineage.versions_trained_on(actor=request.user, node=node)
            node_url = lineage.node_url_maker()
            context["impact"] = [{**row, "url": node_url(row["id"])}
                                 for row in lineage.lineage_impact(actor=request.user, node=node)]
        response = render(request, template, context, status=status)
        patch_vary_headers(response, ("HX-Request",))
        return response


class VersionLineageView(LoginRequiredMixin, View):
    """A version's Lineage tab: its graph (the graph's own controls ask for the graph alone)."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the version page on its Lineage tab, or the graph alone for the graph's controls."""
        model = get_model(request, name)
        version = get_version(model, number)
        node = lineage.node_for_version(version=version)
        context: dict = {"node": None}
        status = 200
        if node is not None:
            node = _node_or_404(request, node.pk)
            graph_url = reverse("registry:version-lineage", args=[model.name, version.number])
            drawn, status, error = _graph(request, node, graph_url)
            context = {"node": node, "embedded": True, "error": error, "graph_url": graph_url, **drawn}
        if not wants_panel(request):  # with nothing linked yet: its own node, alone, and what would give it lineage
            return version_tab_response(request, model, version, tab="lineage",
                                        template="registry/_version_lineage.html", context=context, status=status)
        response = render(request, "registry/_lineage_graph.html", {"model": model, "version": version, **context},
                          status=status)
        patch_vary_headers(response, ("HX-Request", "HX-Target"))
        return response
