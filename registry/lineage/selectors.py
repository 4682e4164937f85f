"""Lineage reads: the nodes an actor may see, recursive-CTE walks and impact, and a walked graph laid out to draw.

A node scoped to a model (its versions, and conversions, deployments and prediction batches registered against
it) is visible only to those who may see that model; unscoped nodes (datasets, feature sets, code commits,
unscoped deployments) to every signed-in user. Walks and impact silently drop nodes the actor may not see, so a
hidden model never leaks through the graph.
"""

from __future__ import annotations

import html
from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from registry import caching, charts, pagination, permissions, validation
from registry.errors import InvalidInput, NotFound
from registry.lineage.layout import layered_layout
from registry.lineage.models import EDGE_KIND_LABELS, EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import ModelVersion, RegisteredModel, Run

MAX_DEPTH = 25
DEFAULT_DEPTH = 3
MAX_GRAPH_NODES = 2500
GROUP_ABOVE = 40  # a graph with more nodes than this is drawn one node per kind until a kind is expanded
IMPACT_KINDS = (NodeKind.MODEL_VERSION, NodeKind.DEPLOYMENT)  # listed in this order
IMPACT_COUNTS = {NodeKind.MODEL_VERSION: "model_versions", NodeKind.DEPLOYMENT: "deployments"}  # their counts' names


def visible_nodes(actor: Any) -> QuerySet[LineageNode]:
    """Return the lineage nodes `actor` may see: unscoped ones, and those of models they may see."""
    if actor is None or not actor.is_authenticated:
        return LineageNode.objects.none()
    if actor.is_staff or actor.is_superuser:
        return LineageNode.objects.all()
    return LineageNode.objects.filter(Q(model__isnull=True) | Q(model__in=permissions.visible_models(actor)))


def _visible_model_ids(actor: Any, model_ids: set[int]) -> set[int]:
    if not model_ids:
        return set()
    return set(permissions.visible_models(actor).filter(pk__in=model_ids).values_list("pk", flat=True))


def node_get(*, actor: Any, node_id: int | str) -> LineageNode:
    """Return a node `actor` may see, or raise NotFound (the same answer whether it is hidden or missing)."""
    try:
        pk = validation.integer(node_id, "Node id", low=1)
    except InvalidInput:
        raise InvalidInput(f"Node id must be an integer, not {str(node_id)[:40]!r}.")
    node = (visible_nodes(actor).select_related("model", "model_version", "model_version__model", "owner")
            .filter(pk=pk).first())
    if node is None:
        raise NotFound(f"Lineage node {pk} not found.")
    return node


def node_for_version(*, version: ModelVersion) -> LineageNode | None:
    """Return the lineage node of an already visible version, or None when it has none yet."""
    return LineageNode.objects.filter(model_version=version).first()


def _edge_table() -> str:
    return connection.ops.quote_name(LineageEdge._meta.db_table)


def _node_table() -> str:
    return connection.ops.quote_name(LineageNode._meta.db_table)


def _downstream_sql() -> str:
    """The recursive walk `down(id)`: the node given as its one parameter and every node downstream of it."""
    return f"""WITH RECURSIVE down(id) AS (
            SELECT CAST(%s AS BIGINT)
            UNION
            SELECT e.downstream_id FROM {_edge_table()} e JOIN down d ON e.upstream_id = d.id
        )"""  # noqa: S608 - only identifiers from model metadata are interpolated


def reaches(*, start: int, goal: int) -> bool:
    """True when `goal` is downstream of `start` (one recursive query; stops at the first hit)."""
    sql = f"""
        {_downstream_sql()}
        SELECT 1 FROM down WHERE id = %s LIMIT 1"""  # noqa: S608 - only identifiers from model metadata are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, goal])
        return cursor.fetchone() is not None


def _walk_sql(direction: str) -> str:
    src, dst = ("upstream_id", "downstream_id") if direction == "downstream" else ("downstream_id", "upstream_id")
    name = "down" if direction == "downstream" else "up"
    return f"""{name}(id, depth) AS (
            SELECT CAST(%s AS BIGINT), 0
            UNION
            SELECT e.{dst}, w.depth + 1 FROM {_edge_table()} e JOIN {name} w ON e.{src} = w.id WHERE w.depth < %s
        )"""  # noqa: S608 - only identifiers from model metadata are interpolated


@dataclass
class Graph:
    """A visible subgraph around a focus node: nodes with their signed depth, and the edges between them."""

    focus: LineageNode
    nodes: list[LineageNode]
    depths: dict[int, int]
    edges: list[LineageEdge]
    direction: str
    depth: int
    truncated: bool


def lineage_walk(*, actor: Any, node: LineageNode, direction: str = "both", depth: int = DEFAULT_DEPTH) -> Graph:
    """Return the nodes up to `depth` upstream and/or downstream of `node` (one recursive query) and their edges."""
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidInput("direction must be upstream, downstream or both.")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be an integer from 1 to {MAX_DEPTH}.")
    walks = ["downstream", "upstream"] if direction == "both" else [direction]
    ctes = ", ".join(_walk_sql(d) for d in walks)
    selects = " UNION ALL ".join(
        "SELECT id, MIN(depth) FROM down GROUP BY id" if d == "downstream"
        else "SELECT id, -MIN(depth) FROM up GROUP BY id" for d in walks)
    params: list[Any] = []
    for _ in walks:
        params += [node.pk, depth]
    with connection.cursor() as cursor:
        cursor.execute(f"WITH RECURSIVE {ctes} {selects}", params)
        rows = cursor.fetchall()
    depths: dict[int, int] = {}
    for pk, signed in rows:
        if pk not in depths or abs(signed) < abs(depths[pk]) or (signed == 0):
            depths[pk] = signed
    ordered = sorted(depths, key=lambda pk: (abs(depths[pk]), pk))
    truncated = len(ordered) > MAX_GRAPH_NODES
    wanted = ordered[:MAX_GRAPH_NODES]
    nodes = list(visible_nodes(actor).filter(pk__in=wanted)
                 .select_related("model", "model_version", "model_version__model"))
    ids = {n.pk for n in nodes}
    # One IN list, the other end checked here: SQLite answers "upstream IN (…) AND downstream IN (…)" with two
    # thousand ids each in seconds, as it probes the second list for every row the first one finds.
    edges = [e for e in LineageEdge.objects.filter(upstream_id__in=ids).order_by("pk")
             .only("id", "upstream_id", "downstream_id", "kind", "role") if e.downstream_id in ids]
    return Graph(focus=node, nodes=sorted(nodes, key=lambda n: (depths[n.pk], n.kind, n.name, n.pk)),
                 depths={pk: depths[pk] for pk in ids}, edges=edges, direction=direction, depth=depth,
                 truncated=truncated)


def lineage_impact(*, actor: Any, node: LineageNode, kinds: Iterable[str] = IMPACT_KINDS) -> list[dict[str, Any]]:
    """Return every node of `kinds` (by default model versions and deployments) downstream of `node` that `actor` may
    see (one recursive query)."""
    kinds = tuple(kinds)
    mv = connection.ops.quote_name(ModelVersion._meta.db_table)
    rm = connection.ops.quote_name(RegisteredModel._meta.db_table)
    sql = f"""
        {_downstream_sql()}
        SELECT n.id, n.kind, n.name, n.version, n.external_id, n.model_id, m.name, v.number, v.stage, v.deprecated
        FROM down JOIN {_node_table()} n ON n.id = down.id
        LEFT JOIN {mv} v ON v.id = n.model_version_id
        LEFT JOIN {rm} m ON m.id = n.model_id
        WHERE n.kind IN ({", ".join(["%s"] * len(kinds))}) AND n.id <> %s
        ORDER BY n.kind DESC, m.name, v.number, n.name, n.id"""  # noqa: S608 - only identifiers from model metadata are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [node.pk, *kinds, node.pk])
        rows = cursor.fetchall()
    allowed = _visible_model_ids(actor, {r[5] for r in rows if r[5] is not None})
    if actor is not None and (actor.is_staff or actor.is_superuser):
        allowed = {r[5] for r in rows}
    out = []
    for pk, kind, name, version, external_id, model_id, model_name, number, stage, deprecated in rows:
        if model_id is not None and model_id not in allowed:
            continue
        out.append({"id": pk, "kind": kind, "name": name, "version": version, "external_id": external_id,
                    "model": model_name, "number": number, "stage": stage,
                    "deprecated": bool(deprecated) if deprecated is not None else None})
    return out


@dataclass(frozen=True)
class ImpactIndex:
    """What a root reaches, grouped for counting and paging, without names or states (those are read per request):
    one group per (kind, model id) with its members' sort keys (version number, else node id) and node ids, each
    group a slice of the two flat arrays, sorted by key."""

    groups: tuple[tuple[str, int | None, int, int], ...]  # (kind, model id or None, start, end)
    keys: array
    ids: array


def _impact_index(root_id: int) -> ImpactIndex:
    """Walk everything downstream of `root_id` (one recursive query) and group its versions and deployments."""
    mv = connection.ops.quote_name(ModelVersion._meta.db_table)
    sql = f"""
        {_downstream_sql()}
        SELECT n.kind, n.model_id, COALESCE(v.number, n.id), n.id
        FROM down JOIN {_node_table()} n ON n.id = down.id LEFT JOIN {mv} v ON v.id = n.model_version_id
        WHERE n.kind IN (%s, %s) AND n.id <> %s
        ORDER BY n.kind, n.model_id, 3, n.id"""  # noqa: S608 - only identifiers from model metadata are interpolated
    # Rows are read one by one into two flat arrays, never held as a list of tuples: tens of thousands of tuples
    # that outlive a few collections would set off a full garbage collection of the process a moment later.
    groups: list[tuple[str, int | None, int, int]] = []
    keys, ids = array("q"), array("q")
    current: tuple[str, int | None] | None = None
    start = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, [root_id, *IMPACT_KINDS, root_id])
        for kind, model_id, key, pk in cursor:
            if (kind, model_id) != current:
                if current is not None:
                    groups.append((*current, start, len(ids)))
                current, start = (kind, model_id), len(ids)
            keys.append(key)
            ids.append(pk)
    if current is not None:
        groups.append((*current, start, len(ids)))
    return ImpactIndex(groups=tuple(groups), keys=keys, ids=ids)


def _impact_cursor(raw: str | None) -> tuple[Any, ...] | None:
    """Decode an impact page cursor: the sort position (kind rank, unscoped, model name, model id, key) of the
    last row of the page before."""
    values = pagination.decode_cursor(raw, 5)
    if values is None:
        return None
    rank, unscoped, name, model_id, key = values
    ints = (rank, unscoped, model_id, key)
    if (not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not isinstance(name, str)
            or not 0 <= rank < len(IMPACT_KINDS)):
        raise InvalidInput("Invalid page cursor.")
    return (rank, unscoped, name, model_id, key)


def _impact_row(n: LineageNode) -> dict[str, Any]:
    version = n.model_version
    return {"id": n.pk, "kind": n.kind, "name": n.name, "version": n.version, "external_id": n.external_id,
            "model": n.model.name if n.model_id else None, "number": version.number if version else None,
            "stage": version.stage if version else None, "deprecated": version.deprecated if version else None}


def lineage_impact_summary(*, actor: Any, node: LineageNode, params: Mapping[str, Any] | None = None
                           ) -> dict[str, Any]:
    """Return what `node` reaches downstream that `actor` may see: the number of model versions and deployments,
    per kind and per model, and one page of them (`max_results`, `cursor` as list endpoints take them), model
    versions first, then by model name and version number (deployments by registration).

    The walk is cached until a lineage edge is written; who may see which model is checked on every call, so a
    model the actor cannot see is neither listed nor counted.
    """
    params = params or {}
    size = pagination.max_results(params)
    after = _impact_cursor(params.get("cursor"))
    index = caching.read_shared(caching.LINEAGE_GRAPH, ("impact", str(node.pk)), lambda: _impact_index(node.pk))
    wanted = {model_id for _, model_id, _, _ in index.groups if model_id is not None}
    names = dict(permissions.visible_models(actor).filter(pk__in=wanted).values_list("pk", "name")) \
        if wanted else {}
    signed_in = actor is not None and actor.is_authenticated
    rank = {kind: i for i, kind in enumerate(IMPACT_KINDS)}
    shown = sorted(((rank[kind], int(model_id is None), names.get(model_id, ""), model_id or 0), start, end)
                   for kind, model_id, start, end in index.groups
                   if (model_id in names if model_id is not None else signed_in))
    counts = dict.fromkeys(IMPACT_KINDS, 0)
    per_model: dict[tuple[int, str], dict[str, Any]] = {}
    for (kind_rank, unscoped, name, _), start, end in shown:
        kind = IMPACT_KINDS[kind_rank]
        counts[kind] += end - start
        row = per_model.setdefault((unscoped, name), {"model": name if not unscoped else None,
                                                      **dict.fromkeys(IMPACT_COUNTS.values(), 0)})
        row[IMPACT_COUNTS[kind]] += end - start
    page: list[int] = []
    last: tuple[Any, ...] | None = None
    for group, start, end in shown:
        if after is not None and group < after[:4]:
            continue
        if after is not None and group == after[:4]:
            start = bisect_right(index.keys, after[4], start, end)  # keys are sorted within a group
        for i in range(start, min(end, start + size + 1 - len(page))):
            page.append(index.ids[i])
            if len(page) <= size:
                last = (*group, index.keys[i])
        if len(page) > size:
            break
    nxt = None
    if len(page) > size:
        page = page[:size]
        nxt = pagination.encode_cursor(list(last or ()))
    loaded = {n.pk: n for n in LineageNode.objects.filter(pk__in=page).select_related("model", "model_version")}
    return {"total": sum(counts.values()), **{IMPACT_COUNTS[kind]: n for kind, n in counts.items()},
            "models": [per_model[k] for k in sorted(per_model)],
            "results": [_impact_row(loaded[pk]) for pk in page if pk in loaded], "next_cursor": nxt}


def versions_trained_on(*, actor: Any, node: LineageNode) -> list[LineageNode]:
    """Return the visible model-version nodes with a direct trained_on/uses_features edge from `node`, each with
    its version's number and stage and its model's name (the rest deferred: a feature set may have hundreds)."""
    return list(visible_nodes(actor).filter(
        kind=NodeKind.MODEL_VERSION, upstream_edges__upstream=node,
        upstream_edges__kind__in=[EdgeKind.TRAINED_ON, EdgeKind.USES_FEATURES],
    ).select_related("model_version__model").only(
        "kind", "name", "model_version__number", "model_version__stage", "model_version__model__name",
    ).distinct().order_by("name", "model_version__number"))


# ------------------------------------------------------------------------------------------------ drawing


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


def expand_kinds(values: Iterable[str]) -> frozenset[str]:
    """Validate the node kinds a grouped graph should draw one by one (`expand` query values)."""
    kinds = frozenset(v for v in values if v)
    unknown = sorted(kinds - set(NodeKind.values))
    if unknown:
        raise InvalidInput(f"Cannot expand {unknown[0][:40]!r}: expand takes node kinds "
                           f"({', '.join(NodeKind.values)}).")
    return kinds


def node_url_maker() -> Callable[[int], str]:
    """Return a function giving a node page's address from its id: reversed once, not once per node of a graph of
    thousands (reverse() per node was about a sixth of a 2,000-node page's server time)."""
    sentinel = 987654321
    head, tail = reverse("registry:lineage-node", args=[sentinel]).rsplit(str(sentinel), 1)
    return lambda pk: f"{head}{pk}{tail}"


def _node_row(n: LineageNode, focus: LineageNode, url: str) -> dict[str, Any]:
    deprecated = bool(n.model_version_id and n.model_version.deprecated)
    return {"id": n.pk, "kind": n.kind, "label": _label(n), "hover": _hover(n), "url": url, "focus": n.pk == focus.pk,
            "personal": n.contains_personal_data, "deprecated": deprecated,
            "quarantined": bool(n.properties.get("quarantined")), "group": False}


def _edge_label(kinds: dict[str, int]) -> str:
    """Name the kinds (and roles, which users type: escaped for Plotly's HTML subset) of the edges drawn as one."""
    return html.escape(", ".join(f"{label}{f' ×{count:,}' if count > 1 else ''}"
                                 for label, count in sorted(kinds.items())))


def graph_context(graph: Graph, *, graph_url: str | None = None, expand: frozenset[str] = frozenset()
                  ) -> dict[str, Any]:
    """Lay out a walked graph and return what the graph partial renders (figure, counts, flags).

    With a `graph_url` (the partial's address) and more than GROUP_ABOVE nodes, every kind not in `expand` is drawn
    as one node with its count, linked to the other groups by the edges between their members, and clicking it
    asks `graph_url` for the graph with that kind expanded; the focus node is always drawn on its own.
    """
    nodes = graph.nodes
    grouped = graph_url is not None and len(nodes) > GROUP_ABOVE
    shown: dict[int, Any] = {}  # node pk -> the id it is drawn as (itself, or its kind's group)
    members: dict[str, list[LineageNode]] = defaultdict(list)
    for n in nodes:
        if grouped and n.kind not in expand and n.pk != graph.focus.pk:
            shown[n.pk] = f"group:{n.kind}"
            members[n.kind].append(n)
        else:
            shown[n.pk] = n.pk
    merged: dict[tuple[Any, Any], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in graph.edges:
        u, v = shown[e.upstream_id], shown[e.downstream_id]
        if u != v:  # edges inside one group are summed up by its count
            merged[(u, v)][f"{EDGE_KIND_LABELS.get(e.kind, e.kind)}{' (' + e.role + ')' if e.role else ''}"] += 1
    rows = []
    listed = []  # the nodes drawn one by one, for the list beside the graph
    params = {"direction": graph.direction, "depth": graph.depth}
    node_url = node_url_maker()
    for n in nodes:
        if shown[n.pk] == n.pk:
            url = node_url(n.pk)
            rows.append(_node_row(n, graph.focus, url))
            listed.append({"url": url, "text": str(n), "personal": n.contains_personal_data})
    for kind, group in members.items():
        label = charts.NODE_LABELS[kind]
        url = f"{graph_url}?{urlencode({**params, 'expand': sorted(expand | {kind})}, doseq=True)}"
        personal = sum(m.contains_personal_data for m in group)
        hover = f"{len(group):,} × {label.lower()}" + (f", {personal:,} with personal data" if personal else "")
        rows.append({"id": f"group:{kind}", "kind": kind, "label": f"{label} ×{len(group):,}",
                     "hover": html.escape(f"{hover}: click to show them one by one"),
                     "url": url, "focus": False, "personal": bool(personal),
                     "deprecated": False, "quarantined": False, "group": True, "count": len(group)})
    ids = [r["id"] for r in rows]
    pairs = list(merged)
    layout = layered_layout(ids, pairs, sort_key={r["id"]: f"{r['kind']}:{r['label']}" for r in rows})
    for r in rows:
        r["x"], r["y"] = layout.positions[r["id"]]
    edges = [{"points": points, "label": _edge_label(merged[pair]), "target": pair[1]}
             for pair, points in zip(pairs, layout.polylines, strict=True)]
    figure = charts.lineage_figure(rows, edges, layout.widest, layout.layers)
    groups = [{"kind": kind, "label": charts.NODE_LABELS[kind], "count": len(group),
               "url": f"{graph_url}?{urlencode({**params, 'expand': sorted(expand | {kind})}, doseq=True)}"}
              for kind, group in sorted(members.items())]
    expanded = [{"kind": kind, "label": charts.NODE_LABELS[kind],
                 "url": f"{graph_url}?{urlencode({**params, 'expand': sorted(expand - {kind})}, doseq=True)}"}
                for kind in sorted(expand) if grouped]
    return {"graph": graph, "figure": figure, "charts": [figure], "crossings": layout.crossings,
            "kinds": sorted({n.kind for n in nodes}), "node_count": len(nodes), "edge_count": len(graph.edges),
            "listed": listed,
            "grouped": grouped, "group_above": GROUP_ABOVE, "groups": groups, "expanded": expanded,
            "expand": sorted(expand),
            "depth_choices": sorted({1, 2, 3, 5, 8, 12, MAX_DEPTH, graph.depth}),
            "direction_choices": [("both", "Upstream and downstream"), ("upstream", "Upstream"),
                                  ("downstream", "Downstream")]}


def run_held_elsewhere(version: ModelVersion) -> bool:
    """Whether the version names a run that Stratum does not hold (registered from a run tracked elsewhere)."""
    return bool(runs_held_elsewhere([version.run_id]))


def runs_held_elsewhere(run_ids: Iterable[str]) -> set[str]:
    """Those of `run_ids` that name no run Stratum holds, in one query: their versions' runs are not verified."""
    wanted = {r for r in run_ids if r}
    if not wanted:
        return set()
    return wanted - set(Run.objects.filter(pk__in=wanted).values_list("pk", flat=True))
