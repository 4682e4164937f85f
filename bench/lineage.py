#!/usr/bin/env python3
"""Benchmark lineage impact: build a 100,000-node / 300,000-edge graph on PostgreSQL and time impact queries.

    createdb -h 127.0.0.1 -U postgres stratum_bench_lineage
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench_lineage python bench/lineage.py
    ... python bench/lineage.py --nodes 10000 --edges 30000      # quicker

Point DATABASE_URL at a scratch database: the script migrates it and, unless --keep, deletes what it built.
The graph mimics an organisation: 100 teams, each with raw datasets, derived datasets, feature sets, code
commits, models with versions, deployments and prediction batches; 95% of edges stay inside a team, 5% cross
teams. Every edge points from a lower to a higher index, so the graph is acyclic by construction. The target
(issue 6) is impact of a root dataset in under 200 ms on PostgreSQL; the script prints the median and p95 over
many root datasets, and the worst root it found. Issue 21 adds a root that reaches most of the graph: one shared
reference dataset (a calendar, a country list) from which every team's raw datasets derive, so its impact is
nearly every version and deployment; its p95 is printed separately (its edges count in the edge budget).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from registry.lineage import selectors as lineage  # noqa: E402
from registry.lineage.models import LineageEdge, LineageNode, NodeKind  # noqa: E402
from registry.models import ModelVersion, RegisteredModel  # noqa: E402

TEAMS = 100
SHARE = {  # fraction of nodes of each kind, in topological order
    "raw": 0.05, "dataset": 0.25, "feature_set": 0.10, "code_commit": 0.02, "model_version": 0.40,
    "deployment": 0.10, "prediction_batch": 0.08,
}
PREFIX = "bench-lineage"


def build(n_nodes: int, n_edges: int, seed: int) -> tuple[list[int], int, float]:
    """Insert the graph; return the ids of root datasets, the id of the shared root and the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    counts = {kind: int(n_nodes * share) for kind, share in SHARE.items()}
    counts["model_version"] += n_nodes - sum(counts.values())
    per_team_models = max(1, counts["model_version"] // (TEAMS * 20))
    with transaction.atomic():
        models = RegisteredModel.objects.bulk_create(
            [RegisteredModel(name=f"{PREFIX}-{t}-{m}") for t in range(TEAMS) for m in range(per_team_models)],
            batch_size=5000)
        versions: list[ModelVersion] = []
        for i in range(counts["model_version"]):
            model = models[i % len(models)]
            model.last_version_number += 1
            versions.append(ModelVersion(model=model, number=model.last_version_number))
        versions = ModelVersion.objects.bulk_create(versions, batch_size=5000)
        nodes: list[LineageNode] = []
        team_of: list[int] = []
        kinds: list[str] = []
        v_iter = iter(versions)
        for kind, count in counts.items():
            for i in range(count):
                team = i % TEAMS
                real_kind = NodeKind.DATASET if kind == "raw" else kind
                node = LineageNode(kind=real_kind, key=f"{PREFIX}-{kind}-{i}", name=f"{kind}-{i}",
                                   contains_personal_data=kind == "raw" and i % 7 == 0)
                if real_kind == NodeKind.MODEL_VERSION:
                    v = next(v_iter)
                    node.model_version, node.model_id = v, v.model_id
                    team = (i % len(models)) // per_team_models
                elif real_kind in (NodeKind.DEPLOYMENT, NodeKind.PREDICTION_BATCH):
                    node.model_id = models[(team * per_team_models + i) % len(models)].pk
                nodes.append(node)
                team_of.append(team)
                kinds.append(kind)
        nodes = LineageNode.objects.bulk_create(nodes, batch_size=5000)
        ids = [n.pk for n in nodes]
        hub = LineageNode.objects.create(kind=NodeKind.DATASET, key=f"{PREFIX}-shared-reference",
                                         name="shared-reference")
        by_kind_team: dict[tuple[str, int], list[int]] = {}
        for idx, (kind, team) in enumerate(zip(kinds, team_of, strict=True)):
            by_kind_team.setdefault((kind, team), []).append(idx)

        def pick(kinds_: tuple[str, ...], team: int, before: int) -> int | None:
            """Pick an earlier node (index < before) of one of `kinds_`, usually from the same team."""
            if rng.random() < 0.05:
                team = rng.randrange(TEAMS)
            pool = [k for k in kinds_ if by_kind_team.get((k, team))]
            if not pool:
                return None
            cands = by_kind_team[(rng.choice(pool), team)]
            # Prefer recent nodes: lineage is mostly local in time too.
            hi = next((j for j, c in enumerate(cands) if c >= before), len(cands))
            if hi == 0:
                return None
            return cands[rng.randrange(max(0, hi - 40), hi)]

        plan = {  # kind -> (edge kind, upstream kinds, edges per node)
            "dataset": ("derived_from", ("raw", "dataset"), 2),
            "feature_set": ("derived_from", ("dataset",), 3),
            "code_commit": None,
            "model_version": [("trained_on", ("dataset", "feature_set"), 2), ("uses_features", ("feature_set",), 1),
                              ("built_from_code", ("code_commit",), 1)],
            "deployment": ("deployed_as", ("model_version",), 2),
            "prediction_batch": ("produced", ("deployment",), 1),
        }
        edges: set[tuple[int, int, str, str]] = set()
        raw_idx = [i for i, k in enumerate(kinds) if k == "raw"]
        for idx, kind in enumerate(kinds):
            rules = plan.get(kind)
            if not rules:
                continue
            for edge_kind, ups, n in rules if isinstance(rules, list) else [rules]:
                for _ in range(n):
                    up = pick(ups, team_of[idx], idx)
                    if up is not None:
                        edges.add((up, idx, edge_kind, "train" if edge_kind == "trained_on" else ""))
        # Top up with more derivations and training inputs until the edge budget is met.
        data_idx = [i for i, k in enumerate(kinds) if k in ("dataset", "feature_set", "model_version")]
        hub_edges = [LineageEdge(upstream_id=hub.pk, downstream_id=ids[i], kind="derived_from") for i in raw_idx]
        while len(edges) + len(hub_edges) < n_edges:
            idx = rng.choice(data_idx)
            kind = kinds[idx]
            edge_kind = "derived_from" if kind != "model_version" else "trained_on"
            ups = ("raw", "dataset") if kind == "dataset" else ("dataset", "feature_set")
            up = pick(ups, team_of[idx], idx)
            if up is not None:
                edges.add((up, idx, edge_kind, "validation" if edge_kind == "trained_on" else ""))
        LineageEdge.objects.bulk_create(
            [LineageEdge(upstream_id=ids[u], downstream_id=ids[d], kind=k, role=r) for u, d, k, r in edges]
            + hub_edges, batch_size=10000)
    with connection.cursor() as cursor:
        # VACUUM too, as autovacuum would soon: it sets the visibility map, so the walk's probes of the edge index
        # are index-only scans.
        cursor.execute("VACUUM ANALYZE registry_lineagenode" if connection.vendor == "postgresql" else "ANALYZE")
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE registry_lineageedge")
            cursor.execute("VACUUM ANALYZE registry_modelversion")
    roots = [ids[i] for i in raw_idx]
    return roots, hub.pk, time.perf_counter() - started


def cleanup() -> None:
    """Delete everything the benchmark built."""
    with transaction.atomic():
        LineageNode.objects.filter(key__startswith=PREFIX).delete()
        RegisteredModel.objects.filter(name__startswith=PREFIX).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--roots", type=int, default=50, help="root datasets to time")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per root (median kept)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the graph after the run")
    parser.add_argument("--reuse", action="store_true", help="time the graph a --keep run left (no rebuild)")
    parser.add_argument("--hub-repeat", type=int, default=40, help="timed runs of the shared root's impact")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print(f"warning: running on {connection.vendor}; the target is for PostgreSQL", file=sys.stderr)
    call_command("migrate", verbosity=0)
    staff, _ = get_user_model().objects.get_or_create(username=f"{PREFIX}-staff", defaults={"is_staff": True})
    hub_id = LineageNode.objects.filter(key=f"{PREFIX}-shared-reference").values_list("pk", flat=True).first()
    if args.reuse and hub_id is not None:
        roots, seconds = list(LineageNode.objects.filter(
            key__startswith=f"{PREFIX}-raw-").order_by("pk").values_list("pk", flat=True)), 0.0
    else:
        cleanup()
        roots, hub_id, seconds = build(args.nodes, args.edges, args.seed)
    print(f"built {LineageNode.objects.filter(key__startswith=PREFIX).count():,} nodes and "
          f"{LineageEdge.objects.filter(upstream__key__startswith=PREFIX).count():,} edges in {seconds:.1f} s "
          f"({connection.vendor})")
    rng = random.Random(args.seed)
    sample = rng.sample(roots, min(args.roots, len(roots)))
    timings: list[tuple[float, int, int]] = []
    for root_id in sample:
        node = LineageNode.objects.get(pk=root_id)
        lineage.lineage_impact(actor=staff, node=node)  # warm
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = lineage.lineage_impact(actor=staff, node=node)
            runs.append(time.perf_counter() - t0)
        timings.append((statistics.median(runs) * 1000, len(rows), root_id))
    ms = sorted(t for t, _, _ in timings)
    worst = max(timings)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(f"impact of a root dataset over {len(timings)} roots x {args.repeat} runs:")
    print(f"  median {statistics.median(ms):.1f} ms   p95 {p95:.1f} ms   max {worst[0]:.1f} ms "
          f"(root {worst[2]}, {worst[1]:,} versions/deployments downstream)")
    sizes = sorted(n for _, n, _ in timings)
    print(f"  impacted versions+deployments per root: median {statistics.median(sizes):,.0f}, max {sizes[-1]:,}")
    print(f"  target < 200 ms: {'met' if p95 < 200 else 'NOT met'} at p95")
    hub = LineageNode.objects.get(pk=hub_id)
    lineage.lineage_impact(actor=staff, node=hub)  # warm
    hub_runs = []
    for _ in range(args.hub_repeat):
        t0 = time.perf_counter()
        rows = lineage.lineage_impact(actor=staff, node=hub)
        hub_runs.append((time.perf_counter() - t0) * 1000)
    hub_runs.sort()
    everything = LineageNode.objects.filter(key__startswith=PREFIX, kind__in=lineage.IMPACT_KINDS).count()
    hub_p95 = hub_runs[min(len(hub_runs) - 1, round(0.95 * (len(hub_runs) - 1)))]
    print(f"impact of the shared root (reaches {len(rows):,} of {everything:,} versions+deployments, "
          f"{len(rows) / max(everything, 1):.0%}) over {len(hub_runs)} runs:")
    print(f"  median {statistics.median(hub_runs):.1f} ms   p95 {hub_p95:.1f} ms   max {hub_runs[-1]:.1f} ms")
    print(f"  target < 200 ms: {'met' if hub_p95 < 200 else 'NOT met'} at p95")
    node = LineageNode.objects.get(pk=worst[2])
    t0 = time.perf_counter()
    graph = lineage.lineage_walk(actor=staff, node=node, direction="downstream", depth=3)
    print(f"walk downstream depth 3 from the worst root: {len(graph.nodes):,} nodes, {len(graph.edges):,} edges in "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")
    if not args.keep:
        cleanup()
        get_user_model().objects.filter(username=f"{PREFIX}-staff").delete()


if __name__ == "__main__":
    main()
