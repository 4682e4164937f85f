"""The demo's lineage beyond what registering versions records: a feature set per model between its datasets and its
versions, and prediction batches left by real requests to the demo endpoints, so the graph runs from training data
to production inference (datasets -> feature sets -> versions -> conversions -> deployments -> prediction batches)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from deployments import serving
from deployments.models import Endpoint
from registry.access import token_create, token_revoke
from registry.errors import DomainError
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, LineageNode, NodeKind
from registry.models import RegisteredModel
from stratum.demo.catalogue import CODE_REPOSITORY, ModelSpec

TRAFFIC_TOKEN_NAME = "demo-traffic"  # noqa: S105 - a token label, not a secret
REQUESTS_PER_ENDPOINT = 24
ROWS_PER_REQUEST = 5


def _feature_set(spec: ModelSpec, model: RegisteredModel) -> str | None:
    """Register `<dataset>-features` v1 derived from the model's train and test datasets and used by every version."""
    owner = model.owner
    versions = list(model.versions.order_by("number"))
    if owner is None or not versions:
        return None
    names = [i["name"] for i in (versions[-1].signature or {}).get("inputs") or []]
    datasets = list(LineageNode.objects.filter(
        kind=NodeKind.DATASET, name__in=[f"{spec.dataset_name}-train", f"{spec.dataset_name}-test"],
        downstream_edges__kind=EdgeKind.TRAINED_ON, downstream_edges__downstream__model=model).distinct())
    with transaction.atomic():
        registered = lineage.node_create(
            actor=owner, kind=NodeKind.FEATURE_SET, name=f"{spec.dataset_name}-features", version="1",
            schema={"features": [{"name": n, "type": "double"} for n in names]},
            transformation_ref=f"{CODE_REPOSITORY}/blob/main/features/{spec.dataset_name}.py",
        )
        features = registered.obj
        for dataset in datasets:
            lineage.edge_create(actor=owner, upstream=dataset, downstream=features, kind=EdgeKind.DERIVED_FROM)
        for version in versions:
            node, _ = lineage.version_node_ensure(version)
            lineage.edge_create(actor=owner, upstream=features, downstream=node, kind=EdgeKind.USES_FEATURES)
    return f"{features.name} v{features.version}" if registered.created else None


def _rows(spec: ModelSpec, width: int) -> list[list[float]]:
    """Real rows of the model's dataset (the last ones: the demo's test split is a shuffle, any rows will do)."""
    x, _ = spec.loader(return_X_y=True)
    rows = [[float(v) for v in row[:width]] for row in x[-REQUESTS_PER_ENDPOINT * ROWS_PER_REQUEST:]]
    return rows


def _traffic(specs: dict[str, ModelSpec], models: Sequence[RegisteredModel], engineer: Any) -> list[str]:
    """Send real requests through the gateway to every demo endpoint that has no prediction batch yet, with a
    serving token made for it and revoked after; write the batches now (as the gateway's flush would)."""
    waiting = [e for e in Endpoint.objects.filter(model__in=models).select_related("model").order_by("name")
               if e.model.name in specs and (e.routing or {}).get("routes")
               and not LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH, endpoint=e.name).exists()]
    if not waiting:
        return []
    token, raw = token_create(user=engineer, actor=engineer, name=TRAFFIC_TOKEN_NAME, scopes=["serve"])
    lines = []
    try:
        caller = serving.authenticate(f"Bearer {raw}")
        for endpoint in waiting:
            width = len((endpoint.model.versions.order_by("-number").first().signature or {}).get("inputs") or [])
            rows = _rows(specs[endpoint.model.name], width)
            answered: dict[int, int] = {}
            for i in range(REQUESTS_PER_ENDPOINT):
                chunk = rows[i * ROWS_PER_REQUEST:(i + 1) * ROWS_PER_REQUEST]
                try:
                    body, _ = serving.predict(endpoint.name, {"rows": chunk}, token=caller, headers={})
                except serving.GatewayError as error:
                    lines.append(f"{endpoint.name}: demo request refused ({error})")
                    break
                answered[body["version"]] = answered.get(body["version"], 0) + 1
            if answered:
                split = ", ".join(f"v{n}: {c}" for n, c in sorted(answered.items()))
                lines.append(f"{endpoint.name}: {sum(answered.values())} demo requests ({split})")
        serving.drain()
    finally:
        token_revoke(token=token, actor=engineer)
    return lines


def seed_lineage(*, users: dict[str, Any], models: Sequence[RegisteredModel], specs: Sequence[ModelSpec],
                 report: Any = None) -> None:
    """Add each demo model's feature set and its endpoints' first prediction batches; idempotent."""
    by_name = {spec.name: spec for spec in specs}
    lines = []
    for model in models:
        if model.name not in by_name:
            continue
        try:
            created = _feature_set(by_name[model.name], model)
        except DomainError as error:
            lines.append(f"{model.name}: feature set not registered ({error.message})")
            continue
        if created:
            lines.append(f"{model.name}: uses features {created}")
    engineer = users.get("engineer")
    if engineer is not None:
        lines += _traffic(by_name, models, engineer)
    if report is not None and lines:
        report.sections.append(("Lineage from training data to predictions:", lines))
