"""A large lineage neighbourhood in a few bulk inserts, for the grouped-graph tests and the render benchmark."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import transaction

from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import ModelVersion, RegisteredModel

SHARES = {  # of the nodes around the focus feature set, by kind
    NodeKind.DATASET: 0.06, NodeKind.MODEL_VERSION: 0.30, NodeKind.CONVERTED_ARTIFACT: 0.14,
    NodeKind.DEPLOYMENT: 0.15,
}


@dataclass
class Neighbourhood:
    """The focus node and how many nodes of each kind surround it (all within depth 3 of it)."""

    focus: LineageNode
    counts: dict[str, int]
    edges: int


@transaction.atomic
def neighbourhood_seed(*, owner, size: int, prefix: str = "hood", seed: int = 21) -> Neighbourhood:
    """Insert `size` lineage nodes around one feature set: datasets it derives from (two levels up), versions that
    use it, their conversions and deployments, and the deployments' prediction batches, all owned by `owner`."""
    rng = random.Random(seed)
    counts = {kind: max(2, int(size * share)) for kind, share in SHARES.items()}
    counts[NodeKind.PREDICTION_BATCH] = size - 1 - sum(counts.values())
    models = RegisteredModel.objects.bulk_create(
        [RegisteredModel(name=f"{prefix}-model-{i}", owner=owner) for i in range(10)])
    versions = []
    for i in range(counts[NodeKind.MODEL_VERSION]):
        model = models[i % len(models)]
        model.last_version_number += 1
        versions.append(ModelVersion(model=model, number=model.last_version_number, creator=owner))
    RegisteredModel.objects.bulk_update(models, ["last_version_number"])
    versions = ModelVersion.objects.bulk_create(versions, batch_size=1000)
    focus = LineageNode.objects.create(kind=NodeKind.FEATURE_SET, key=f"{prefix}-focus", name=f"{prefix} features",
                                       version="1", owner=owner)
    nodes: dict[str, list[LineageNode]] = {}
    for kind, count in counts.items():
        batch = []
        for i in range(count):
            node = LineageNode(kind=kind, key=f"{prefix}-{kind}-{i}", name=f"{prefix} {kind} {i}", owner=owner,
                               contains_personal_data=kind == NodeKind.DATASET and i % 9 == 0)
            if kind == NodeKind.MODEL_VERSION:
                node.model_version, node.model_id = versions[i], versions[i].model_id
            elif kind != NodeKind.DATASET:
                node.model_id = models[i % len(models)].pk
            batch.append(node)
        nodes[kind] = LineageNode.objects.bulk_create(batch, batch_size=1000)
    datasets = nodes[NodeKind.DATASET]
    cut = max(1, len(datasets) // 3)
    direct, raw = datasets[:cut], datasets[cut:]
    edges = {(d.pk, focus.pk, EdgeKind.DERIVED_FROM) for d in direct}
    edges |= {(r.pk, rng.choice(direct).pk, EdgeKind.DERIVED_FROM) for r in raw}
    for v in nodes[NodeKind.MODEL_VERSION]:
        edges.add((focus.pk, v.pk, EdgeKind.USES_FEATURES))
        edges.add((rng.choice(direct).pk, v.pk, EdgeKind.TRAINED_ON))
    for kind, edge_kind in ((NodeKind.CONVERTED_ARTIFACT, EdgeKind.CONVERTED_FROM),
                            (NodeKind.DEPLOYMENT, EdgeKind.DEPLOYED_AS)):
        for n in nodes[kind]:
            edges.add((rng.choice(nodes[NodeKind.MODEL_VERSION]).pk, n.pk, edge_kind))
    for n in nodes[NodeKind.PREDICTION_BATCH]:
        edges.add((rng.choice(nodes[NodeKind.DEPLOYMENT]).pk, n.pk, EdgeKind.PRODUCED))
    LineageEdge.objects.bulk_create([LineageEdge(upstream_id=u, downstream_id=d, kind=k) for u, d, k in edges],
                                    batch_size=2000)
    return Neighbourhood(focus=focus, counts={"feature_set": 1, **{str(k): len(v) for k, v in nodes.items()}},
                         edges=len(edges))
