#!/usr/bin/env python3
"""Benchmark lineage impact: build a 100,000-node / 300,000-edge graph on PostgreSQL and time impact queries.

    createdb -h 127.0.0.1 -U postgres stratum_bench_lineage
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench_lineage python bench/lineage.py
    ... python bench/lineage.py --nodes 10000 --edges 30000      # quicker

Point DATABASE_URL at a scratch database: the script migrates it and, unless --keep, deletes what it built.
The graph mimics an organisation: 100 teams, each with raw datasets, derived datasets, feature sets, code
commits, models with versions, deployments and prediction batches; 95% of edges stay inside a team, 5% cross
teams. Every edge points from a lower to a higher index, so the graph is acyclic by construction. The target
(issue 6) is impact of a root dataset in under 200 ms on PostgreSQL. Issue 21 adds a root that reaches most of the
graph: one shared reference dataset (a calendar, a country list) from which every team's raw datasets derive, so
its impact is nearly every version and deployment (its edges count in the edge budget).

What is timed is the user-facing call: GET /api/v1/lineage/nodes/<id>/impact, end to end through DRF (counts per
kind and per model plus the first page of 100, rendered to JSON), as a staff user and as a viewer of half the
models (whose visibility is checked on every call). The walk behind it is cached per root until a lineage edge is
written, so every figure is printed twice: cold (the cached walk retired before each call: what the first caller
after a lineage write pays) and warm (the cached walk reused). p50/p95 over the sampled ordinary roots, and over
--hub-repeat calls for the shared root. For reference, the full list erasure walks (every impacted row,
lineage_impact) is timed for the shared root too. Use REDIS_URL (as served) for the shared generation tokens.
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

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from registry import caching  # noqa: E402
from registry.lineage import selectors as lineage  # noqa: E402
from registry.lineage.models import LineageEdge, LineageNode, NodeKind  # noqa: E402
from registry.models import ModelRole, ModelVersion, RegisteredModel, Role  # noqa: E402

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
    """Delete everything the benchmark built: edges in one statement, then nodes and models in chunks (a delete
    names every collected row's id in one query, and PostgreSQL takes at most 65,535 parameters)."""
    with transaction.atomic():
        LineageEdge.objects.filter(upstream__key__startswith=PREFIX).delete()
        for qs, chunk in ((LineageNode.objects.filter(key__startswith=PREFIX), 10_000),
                          (RegisteredModel.objects.filter(name__startswith=PREFIX), 500)):  # each takes its versions
            pks = list(qs.values_list("pk", flat=True))
            for i in range(0, len(pks), chunk):
                qs.model.objects.filter(pk__in=pks[i:i + chunk]).delete()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def impact_call(client: APIClient, node_id: int, *, cold: bool) -> tuple[float, dict]:
    """Time one impact request (ms); `cold` retires the cached walks first."""
    if cold:
        caching.retire([caching.LINEAGE_GRAPH])
    t0 = time.perf_counter()
    response = client.get(f"/api/v1/lineage/nodes/{node_id}/impact")
    elapsed = (time.perf_counter() - t0) * 1000
    assert response.status_code == 200, response.content[:300]
    return elapsed, {**response.json(), "bytes": len(response.content)}


def viewer_of_half() -> object:
    """A user holding the viewer role on every other benchmark model (bulk-granted)."""
    viewer, _ = get_user_model().objects.get_or_create(username=f"{PREFIX}-viewer")
    if not ModelRole.objects.filter(user=viewer).exists():
        ids = RegisteredModel.objects.filter(name__startswith=PREFIX).order_by("pk").values_list("pk", flat=True)
        ModelRole.objects.bulk_create([ModelRole(model_id=pk, user=viewer, role=Role.VIEWER) for pk in ids[::2]],
                                      batch_size=5000)
    return viewer


def line(label: str, values: list[float]) -> str:
    return f"  {label:<6} p50 {statistics.median(values):7.1f} ms   p95 {p95(values):7.1f} ms   " \
           f"max {max(values):7.1f} ms  (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--roots", type=int, default=50, help="root datasets to time")
    parser.add_argument("--repeat", type=int, default=5, help="warm calls per root (median kept)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the graph after the run")
    parser.add_argument("--reuse", action="store_true", help="time the graph a --keep run left (no rebuild)")
    parser.add_argument("--hub-repeat", type=int, default=20, help="cold and warm calls for the shared root")
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
    viewer = viewer_of_half()
    print(f"built {LineageNode.objects.filter(key__startswith=PREFIX).count():,} nodes and "
          f"{LineageEdge.objects.filter(upstream__key__startswith=PREFIX).count():,} edges in {seconds:.1f} s "
          f"({connection.vendor}; cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]})")
    print(f"load average before timing: {open('/proc/loadavg').read().split()[:3]}")
    rng = random.Random(args.seed)
    sample = rng.sample(roots, min(args.roots, len(roots)))
    for who, user in (("staff", staff), ("viewer of half the models", viewer)):
        client = APIClient()
        client.force_authenticate(user)
        cold, warm, sizes = [], [], []
        for root_id in sample:
            impact_call(client, root_id, cold=True)  # the database's buffers warm, as on a serving machine
            cold.append(impact_call(client, root_id, cold=True)[0])
            runs = [impact_call(client, root_id, cold=False) for _ in range(args.repeat)]
            warm.append(statistics.median(t for t, _ in runs))
            sizes.append(runs[-1][1]["total"])
        print(f"impact API of a root dataset, as {who}, over {len(sample)} roots "
              f"(impacted versions+deployments: median {statistics.median(sizes):,.0f}, max {max(sizes):,}):")
        print(line("cold", cold))
        print(line("warm", warm))
        impact_call(client, hub_id, cold=True)
        hub_cold = [impact_call(client, hub_id, cold=True)[0] for _ in range(args.hub_repeat)]
        hub_warm = [impact_call(client, hub_id, cold=False)[0] for _ in range(args.hub_repeat)]
        _, body = impact_call(client, hub_id, cold=False)
        everything = LineageNode.objects.filter(key__startswith=PREFIX, kind__in=lineage.IMPACT_KINDS).count()
        print(f"impact API of the shared root, as {who} (counts {body['total']:,} of {everything:,} "
              f"versions+deployments, {len(body['models']):,} models; first page {len(body['results'])} rows, "
              f"{body['bytes']:,} bytes):")
        print(line("cold", hub_cold))
        print(line("warm", hub_warm))
        print(f"  target < 200 ms at p95: cold {'met' if p95(hub_cold) < 200 else 'NOT met'}, "
              f"warm {'met' if p95(hub_warm) < 200 else 'NOT met'}")
    hub = LineageNode.objects.get(pk=hub_id)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        rows = lineage.lineage_impact(actor=staff, node=hub)
        runs.append((time.perf_counter() - t0) * 1000)
    print(f"every impacted row of the shared root (lineage_impact, what erasure walks): {len(rows):,} rows, "
          f"median {statistics.median(runs):.1f} ms over {len(runs)} runs")
    print(f"load average after timing: {open('/proc/loadavg').read().split()[:3]}")
    if not args.keep:
        cleanup()
        get_user_model().objects.filter(username__in=[f"{PREFIX}-staff", f"{PREFIX}-viewer"]).delete()


if __name__ == "__main__":
    main()
