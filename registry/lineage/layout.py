"""Layered (Sugiyama-style) layout of a lineage DAG: layers, dummy nodes, barycentre ordering; plain data only."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

SWEEPS = 12
PATIENCE = 4  # sweeps without fewer crossings before the ordering stops


@dataclass
class Layout:
    """Node positions (x = layer, y = slot) and one polyline per kept edge (self-loops and strays dropped)."""

    positions: dict[Hashable, tuple[float, float]]
    polylines: list[list[tuple[float, float]]]
    crossings: int
    layers: int
    widest: int


def _layers(nodes: Sequence[Hashable], edges: Sequence[tuple[Hashable, Hashable]]) -> dict[Hashable, int]:
    """Longest-path layering from the sources (Kahn's order); nodes on a cycle, if any, go last."""
    succ: dict[Hashable, list[Hashable]] = defaultdict(list)
    indeg = dict.fromkeys(nodes, 0)
    for u, v in edges:
        succ[u].append(v)
        indeg[v] += 1
    layer = dict.fromkeys(nodes, 0)
    queue = [n for n in nodes if indeg[n] == 0]
    while queue:
        n = queue.pop()
        for m in succ[n]:
            layer[m] = max(layer[m], layer[n] + 1)
            indeg[m] -= 1
            if indeg[m] == 0:
                queue.append(m)
    return layer


def _crossings(order: list[list[Hashable]], links: list[tuple[Hashable, Hashable]], layer: dict[Hashable, int]
               ) -> int:
    """Count edge crossings between adjacent layers: inversions of the lower ends, per layer pair."""
    pos = {n: i for row in order for i, n in enumerate(row)}
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, v in links:
        by_layer[layer[u]].append((pos[u], pos[v]))
    total = 0
    for pairs in by_layer.values():
        pairs.sort()
        # For each edge, the earlier edges (smaller or equal upper slot) whose lower end is further down cross it.
        # A sorted list with bisect does this in C; a Fenwick tree in Python loops costs several times more here.
        lower: list[int] = []
        for seen, (_, b) in enumerate(pairs):
            total += seen - bisect.bisect_right(lower, b)
            bisect.insort(lower, b)
    return total


def layered_layout(nodes: Sequence[Hashable], edges: Sequence[tuple[Hashable, Hashable]],
                   sort_key: dict[Hashable, str] | None = None) -> Layout:
    """Lay a DAG out left to right: longest-path layers, dummy nodes on long edges, barycentre sweeps."""
    node_set = set(nodes)
    edges = [(u, v) for u, v in edges if u in node_set and v in node_set and u != v]
    layer = _layers(list(nodes), edges)
    # Split edges that span several layers with dummy nodes so crossings are counted and reduced properly.
    links: list[tuple[Hashable, Hashable]] = []
    chains: list[list[Hashable]] = []
    for i, (u, v) in enumerate(edges):
        chain = [u]
        for step in range(layer[u] + 1, layer[v]):
            dummy = ("__dummy__", i, step)
            layer[dummy] = step
            chain.append(dummy)
        chain.append(v)
        chains.append(chain)
        links.extend(itertools.pairwise(chain))
    order_of: dict[int, list[Hashable]] = defaultdict(list)
    keys = sort_key or {}
    for n in sorted(layer, key=lambda n: (layer[n], keys.get(n, ""), str(n))):
        order_of[layer[n]].append(n)
    order = [order_of[i] for i in range(max(order_of, default=-1) + 1)]
    preds: dict[Hashable, list[Hashable]] = defaultdict(list)
    succs: dict[Hashable, list[Hashable]] = defaultdict(list)
    for u, v in links:
        succs[u].append(v)
        preds[v].append(u)
    best = [row[:] for row in order]
    best_crossings = _crossings(order, links, layer)
    stale = 0
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        rows = range(1, len(order)) if downward else range(len(order) - 2, -1, -1)
        neighbours = preds if downward else succs
        for i in rows:
            ref_pos = {n: p for p, n in enumerate(order[i - 1] if downward else order[i + 1])}
            keyed = []
            for p, n in enumerate(order[i]):
                linked = [q for q in map(ref_pos.get, neighbours[n]) if q is not None]
                keyed.append((sum(linked) / len(linked) if linked else float(p), p, n))
            keyed.sort(key=lambda t: (t[0], t[1]))
            order[i] = [n for _, _, n in keyed]
        crossings = _crossings(order, links, layer)
        if crossings < best_crossings:
            best, best_crossings, stale = [row[:] for row in order], crossings, 0
        else:
            stale += 1
        # A down and an up sweep twice over without a better order: the barycentres have settled.
        if best_crossings == 0 or stale >= PATIENCE:
            break
    widest = max((len(row) for row in best), default=0)
    coords: dict[Hashable, tuple[float, float]] = {}
    for x, row in enumerate(best):
        offset = (widest - len(row)) / 2
        for y, n in enumerate(row):
            coords[n] = (float(x), -(offset + y))
    return Layout(
        positions={n: coords[n] for n in nodes},
        polylines=[[coords[n] for n in chain] for chain in chains],
        crossings=best_crossings, layers=len(best), widest=widest,
    )
