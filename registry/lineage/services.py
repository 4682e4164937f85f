"""Lineage writes: typed nodes and edges with cycle refusal, version nodes, and filling lineage from versions.

Authorization: a node scoped to a model is written only by its contributors. Unscoped nodes (datasets, feature
sets, code commits, unscoped deployments) may be registered by anyone who contributes to at least one model (or
staff). Reads are in lineage.selectors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from registry import caching, events, permissions, validation
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.lineage.selectors import reaches, run_held_elsewhere
from registry.locking import model_lock
from registry.models import DatasetRole, ModelRole, ModelVersion, RegisteredModel, Role

SCOPED_KINDS = {NodeKind.MODEL_VERSION, NodeKind.CONVERTED_ARTIFACT, NodeKind.DEPLOYMENT, NodeKind.PREDICTION_BATCH,
                NodeKind.EXTERNAL_RUN}

# Which kinds of node each edge kind may join: (upstream kinds, downstream kinds).
_DATA = {NodeKind.DATASET, NodeKind.FEATURE_SET}
EDGE_RULES: dict[str, tuple[set[str], set[str]]] = {
    EdgeKind.DERIVED_FROM: ({*_DATA, NodeKind.PREDICTION_BATCH}, _DATA),
    EdgeKind.TRAINED_IN: ({NodeKind.EXTERNAL_RUN}, {NodeKind.MODEL_VERSION}),
    EdgeKind.TRAINED_ON: (_DATA, {NodeKind.MODEL_VERSION}),
    EdgeKind.USES_FEATURES: ({NodeKind.FEATURE_SET}, {NodeKind.MODEL_VERSION}),
    EdgeKind.BUILT_FROM_CODE: ({NodeKind.CODE_COMMIT}, {*_DATA, NodeKind.MODEL_VERSION, NodeKind.CONVERTED_ARTIFACT}),
    EdgeKind.CONVERTED_FROM: ({NodeKind.MODEL_VERSION}, {NodeKind.CONVERTED_ARTIFACT}),
    EdgeKind.FINE_TUNED_FROM: ({NodeKind.MODEL_VERSION}, {NodeKind.MODEL_VERSION}),
    EdgeKind.DEPLOYED_AS: ({NodeKind.MODEL_VERSION, NodeKind.CONVERTED_ARTIFACT}, {NodeKind.DEPLOYMENT}),
    EdgeKind.PRODUCED: ({NodeKind.DEPLOYMENT, NodeKind.MODEL_VERSION}, {NodeKind.PREDICTION_BATCH}),
}
# What names a node of each kind: two registrations with the same identity are the same node.
IDENTITY: dict[str, tuple[str, ...]] = {
    NodeKind.DATASET: ("name", "uri", "digest", "version"),
    NodeKind.FEATURE_SET: ("name", "version"),
    NodeKind.CODE_COMMIT: ("repository", "commit"),
    NodeKind.CONVERTED_ARTIFACT: ("model", "name", "version", "digest"),
    NodeKind.DEPLOYMENT: ("model", "name", "external_id"),
    # external_id: the process that counted a gateway batch (two processes' batches of one window are two nodes)
    NodeKind.PREDICTION_BATCH: ("model", "name", "endpoint", "window_start", "window_end", "external_id"),
    NodeKind.EXTERNAL_RUN: ("model", "external_id"),
}
TEXT_LIMITS = {"name": 500, "version": 128, "uri": 2048, "digest": 128, "repository": 2048, "commit": 64,
               "transformation_ref": 2048, "external_id": 256, "endpoint": 256}


# --------------------------------------------------------------------------------------------- permissions


def can_register_lineage(user: Any) -> bool:
    """Staff, and whoever contributes to at least one model, may register unscoped lineage (datasets, code)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser or RegisteredModel.objects.filter(owner_id=user.pk).exists():
        return True
    grants = Q(user_id=user.pk) | Q(group__in=user.groups.all())
    return ModelRole.objects.filter(grants, role__gte=Role.CONTRIBUTOR).exists()


def _check_write(actor: Any, node: LineageNode) -> None:
    """Raise unless `actor` may attach lineage to `node` (contributors of its model, or lineage registrants)."""
    if node.model_id is not None:
        if not permissions.can_contribute(actor, node.model):
            if not permissions.can_view(actor, node.model):
                raise NotFound(f"Lineage node {node.pk} not found.")
            raise Forbidden(f"You do not have permission to record lineage on model {node.model.name!r}.")
    elif not can_register_lineage(actor):
        raise Forbidden("Only contributors of a model may register lineage.")


def graph_lock() -> None:
    """Serialise lineage writes so two concurrent edges can never close a cycle together (SQLite already does).

    An advisory lock, taken before the audit chain's (registry/locking.py): a write that emits an event before it
    records lineage takes this first."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x5354524C494E])  # "STRLIN"


# ------------------------------------------------------------------------------------------------ writes


def identity_key(kind: str, fields: dict[str, Any]) -> str:
    """Return the digest that names a node of `kind` with these identity fields (IDENTITY says which count)."""
    parts = [kind, *[_plain(fields.get(name)) for name in IDENTITY[kind]]]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, RegisteredModel):
        return value.pk
    return value if value is not None else ""


def node_fields_clean(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Return a node's columns from `fields`, checked (text limits, no control characters, JSON, window order)."""
    out: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        value = fields.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInput(f"Lineage node {name} must be text.")
        out[name] = validation.text(value.strip(), f"Lineage node {name}", limit, multiline=False)
    if kind == NodeKind.CODE_COMMIT:
        if not out["commit"]:
            raise InvalidInput("A code commit node needs a commit.")
        out["name"] = out["name"] or f"{out['repository'] or 'code'}@{out['commit'][:12]}"
    if not out["name"]:
        raise InvalidInput("A lineage node needs a name.")
    row_count = fields.get("row_count")
    if row_count is not None and (isinstance(row_count, bool) or not isinstance(row_count, int)
                                  or not 0 <= row_count <= validation.BIGINT_MAX):
        raise InvalidInput(f"row_count must be an integer from 0 to {validation.BIGINT_MAX}.")
    for name in ("schema", "properties"):
        value = fields.get(name) or {}
        if not isinstance(value, (dict, list)):
            raise InvalidInput(f"{name} must be a JSON object or list.")
        if len(json.dumps(value)) > 100_000:
            raise InvalidInput(f"{name} is too large.")
        out[name] = validation.json_data(value, f"Lineage node {name}")
    start, end = fields.get("window_start"), fields.get("window_end")
    if start and end and end < start:
        raise InvalidInput("window_end must not be before window_start.")
    out.update(row_count=row_count, window_start=start, window_end=end,
               contains_personal_data=bool(fields.get("contains_personal_data", False)))
    return out


@dataclass(frozen=True)
class Registered:
    """A node or edge a service returns, and whether this call created it."""

    obj: Any
    created: bool


@transaction.atomic
def node_create(*, actor: Any, kind: str, model: RegisteredModel | None = None,
                model_version: ModelVersion | None = None, **fields: Any) -> Registered:
    """Register a lineage node (or return the existing one with the same identity); model versions by reference."""
    if kind not in NodeKind.values:
        raise InvalidInput(f"Unknown node kind {kind!r}; use one of {', '.join(NodeKind.values)}.")
    if kind == NodeKind.MODEL_VERSION:
        if model_version is None:
            raise InvalidInput("A model_version node names its model and version.")
        if not permissions.can_contribute(actor, model_version.model):
            if not permissions.can_view(actor, model_version.model):
                raise NotFound(f"Registered model {model_version.model.name!r} not found.")
            raise Forbidden(f"You do not have permission to record lineage on model {model_version.model.name!r}.")
        model_lock(model_version.model_id)  # the lock order of registry/locking.py: the model, then the graph's
        graph_lock()
        node, created = version_node_ensure(model_version)
        return Registered(node, created)
    if model_version is not None:
        raise InvalidInput("Only model_version nodes name a version.")
    if model is not None and kind not in SCOPED_KINDS:
        raise InvalidInput(f"A {kind} node is shared across models; do not name a model.")
    clean = node_fields_clean(kind, fields)
    probe = LineageNode(kind=kind, model=model)
    _check_write(actor, probe)
    if model is not None:
        model_lock(model)  # the lock order of registry/locking.py: the model, then the graph's lock
    graph_lock()
    key = identity_key(kind, {**clean, "model": model})
    existing = LineageNode.objects.filter(kind=kind, key=key).first()
    if existing is not None:
        return Registered(existing, False)
    node = LineageNode.objects.create(kind=kind, key=key, model=model, owner=actor, **clean)
    events.emit("lineage_node.created", actor=actor, target=node,
                data={"kind": kind, "name": node.name, "model": model.name if model else None,
                      "contains_personal_data": node.contains_personal_data})
    return Registered(node, True)


@transaction.atomic
def edge_create(*, actor: Any, upstream: LineageNode, downstream: LineageNode, kind: str, role: str = "") -> Registered:
    """Record that `downstream` <kind> `upstream` (e.g. a version trained_on a dataset); cycles are refused."""
    for node in sorted((upstream, downstream), key=lambda n: n.model_id is None):  # hidden models answer 404 first
        _check_write(actor, node)
    graph_lock()
    edge, created = edge_insert(upstream=upstream, downstream=downstream, kind=kind, role=role, actor=actor)
    if created:
        events.emit("lineage_edge.created", actor=actor, target=edge, data={
            "kind": kind, "role": edge.role, "upstream": upstream.pk, "downstream": downstream.pk,
            "upstream_label": str(upstream), "downstream_label": str(downstream)})
    return Registered(edge, created)


def edge_insert(*, upstream: LineageNode, downstream: LineageNode, kind: str, role: str, actor: Any
                 ) -> tuple[LineageEdge, bool]:
    """Validate and insert an edge under the graph lock; no permission check, no event (callers do that)."""
    if kind not in EdgeKind.values:
        raise InvalidInput(f"Unknown edge kind {kind!r}; use one of {', '.join(EdgeKind.values)}.")
    ups, downs = EDGE_RULES[kind]
    if upstream.kind not in ups or downstream.kind not in downs:
        raise InvalidInput(
            f"A {kind} edge joins {'/'.join(sorted(ups))} (upstream) to {'/'.join(sorted(downs))} (downstream), "
            f"not {upstream.kind} to {downstream.kind}.")
    role = role or ""
    if kind == EdgeKind.TRAINED_ON:
        role = role or DatasetRole.TRAIN
        if role not in DatasetRole.values:
            raise InvalidInput(f"Unknown dataset role {role!r}; use one of {', '.join(DatasetRole.values)}.")
    elif role:
        raise InvalidInput("Only trained_on edges carry a role.")
    existing = LineageEdge.objects.filter(upstream=upstream, downstream=downstream, kind=kind, role=role).first()
    if existing is not None:
        return existing, False
    if upstream.pk == downstream.pk or reaches(start=downstream.pk, goal=upstream.pk):
        raise InvalidState(f"Refused: an edge from node {upstream.pk} to node {downstream.pk} would close a cycle "
                           f"(node {downstream.pk} is already upstream of node {upstream.pk}).")
    edge = LineageEdge.objects.create(upstream=upstream, downstream=downstream, kind=kind, role=role,
                                      created_by=actor)
    return edge, True


def version_node_ensure(version: ModelVersion) -> tuple[LineageNode, bool]:
    """Return the lineage node of a model version, creating it when missing (no permission check)."""
    node = LineageNode.objects.filter(model_version=version).first()
    if node is not None:
        return node, False
    node = LineageNode.objects.create(
        kind=NodeKind.MODEL_VERSION, key=f"model_version:{version.pk}", model_id=version.model_id,
        model_version=version, name=version.model.name, version=str(version.number), uri=version.source_uri,
        properties={"run_id": version.run_id} if version.run_id else {}, owner=version.creator)
    return node, True


@dataclass(frozen=True)
class BatchSpec:
    """A prediction batch a serving process counted: requests one version answered on one endpoint in one window."""

    version_id: int
    name: str
    endpoint: str
    window_start: datetime
    window_end: datetime
    row_count: int
    process: str  # which process counted it: two processes' batches of one window are two nodes
    properties: dict[str, Any]
    deployment_name: str = ""  # the deployment node's name (endpoint#id), when a rollout routed the requests


def merge_batch_properties(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A batch's counts after another flush of the same window: counts add up, schemas unite, digests chain."""
    merged = {**old, **new}
    for name in ("requests", "errors", "sampled"):
        merged[name] = int(old.get(name) or 0) + int(new.get(name) or 0)
    merged["input_schema"] = sorted(set(old.get("input_schema") or []) | set(new.get("input_schema") or []))
    for name in ("input_schema_digest", "sample_digest"):
        merged[name] = hashlib.sha256(f"{old.get(name, '')}{new.get(name, '')}".encode()).hexdigest()
    return merged


def prediction_batches_record(specs: list[BatchSpec]) -> list[LineageNode | None]:
    """Record flushed prediction batches, each produced by its model version and its deployment (in bulk, a fixed
    number of queries; new leaves cannot close a cycle, so no graph lock). No domain event: a batch is a system
    record of traffic, written every few seconds, not an act of a person; the deployment it follows was audited.
    The answer is aligned with `specs`: None where the version was deleted meanwhile."""
    if not specs:
        return []
    versions = {v.pk: v for v in ModelVersion.objects.filter(pk__in={s.version_id for s in specs})
                .select_related("model")}
    version_nodes = {n.model_version_id: n for n in LineageNode.objects.filter(model_version_id__in=versions)}
    for version_id, version in versions.items():
        if version_id not in version_nodes:  # a version registered before lineage existed
            version_nodes[version_id], _ = version_node_ensure(version)
    wanted = {(versions[s.version_id].model_id, s.deployment_name) for s in specs if s.deployment_name}
    deployment_nodes = {(n.model_id, n.name): n for n in LineageNode.objects.filter(
        kind=NodeKind.DEPLOYMENT, model_id__in={m for m, _ in wanted}, name__in={d for _, d in wanted})}
    kept = [spec for spec in specs if spec.version_id in versions]
    keys = [identity_key(NodeKind.PREDICTION_BATCH, {
        "model": versions[s.version_id].model_id, "name": s.name, "endpoint": s.endpoint, "external_id": s.process,
        "window_start": s.window_start, "window_end": s.window_end}) for s in kept]
    # A process flushes every second or so: a window's later flushes add to the batch its first flush created.
    existing = {n.key: n for n in LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH, key__in=keys)}
    nodes, new, grown = [], [], []
    for spec, key in zip(kept, keys, strict=True):
        node = existing.get(key)
        if node is not None:
            node.row_count = (node.row_count or 0) + spec.row_count
            node.properties = merge_batch_properties(node.properties, spec.properties)
            grown.append(node)
        else:
            node = LineageNode(
                kind=NodeKind.PREDICTION_BATCH, key=key, model_id=versions[spec.version_id].model_id,
                name=spec.name[:500], version=str(versions[spec.version_id].number), endpoint=spec.endpoint[:256],
                external_id=spec.process[:256], window_start=spec.window_start, window_end=spec.window_end,
                row_count=spec.row_count, properties=spec.properties)
            new.append((spec, node))
        nodes.append(node)
    LineageNode.objects.bulk_update(grown, ["row_count", "properties"])
    LineageNode.objects.bulk_create([node for _, node in new])
    edges = []
    for spec, node in new:
        edges.append(LineageEdge(upstream=version_nodes[spec.version_id], downstream=node, kind=EdgeKind.PRODUCED))
        deployment = deployment_nodes.get((node.model_id, spec.deployment_name))
        if deployment is not None:
            edges.append(LineageEdge(upstream=deployment, downstream=node, kind=EdgeKind.PRODUCED))
    LineageEdge.objects.bulk_create(edges)
    made = dict(zip(map(id, kept), nodes, strict=True))
    return [made.get(id(spec)) for spec in specs]


def _system_node(kind: str, owner: Any, **fields: Any) -> LineageNode:
    clean = node_fields_clean(kind, fields)
    key = identity_key(kind, clean)
    node = LineageNode.objects.filter(kind=kind, key=key).first()
    return node or LineageNode.objects.create(kind=kind, key=key, owner=owner, **clean)


def lineage_fill_from_version(version: ModelVersion) -> int:
    """Record what a version already knows (datasets with roles, code commit) as lineage; return new edges.

    Filled edges have no creator (that marks them as derived from the version), and no event of their own: the
    version's own created/updated event is the audited fact they follow from.
    """
    graph_lock()
    node, _ = version_node_ensure(version)
    added = 0
    for ds in version.datasets.all():
        upstream = _system_node(NodeKind.DATASET, version.creator, name=ds.name, uri=ds.uri, digest=ds.digest)
        added += edge_insert(upstream=upstream, downstream=node, kind=EdgeKind.TRAINED_ON, role=ds.role,
                              actor=None)[1]
    stale = LineageEdge.objects.filter(downstream=node, kind=EdgeKind.BUILT_FROM_CODE, created_by__isnull=True)
    if version.code_commit:
        code = _system_node(NodeKind.CODE_COMMIT, version.creator, repository=version.code_repository,
                            commit=version.code_commit)
        stale = stale.exclude(upstream=code)
    if stale.delete()[0]:
        caching.retire_lineage_on_commit()  # edges deleted alone send no signal (see registry/caching.py)
    if version.code_commit:
        added += edge_insert(upstream=code, downstream=node, kind=EdgeKind.BUILT_FROM_CODE, role="", actor=None)[1]
    added += _external_run_fill(version, node)
    return added


def _external_run_fill(version: ModelVersion, node: LineageNode) -> int:
    """Record a run held elsewhere as external provenance (a node of its own, unverified); once Stratum holds the
    run (it was imported), the external edge goes: the version's run is then Stratum's own."""
    external = LineageEdge.objects.filter(downstream=node, upstream__kind=NodeKind.EXTERNAL_RUN,
                                          created_by__isnull=True)
    if not run_held_elsewhere(version):
        if external.delete()[0]:
            caching.retire_lineage_on_commit()  # edges deleted alone send no signal (see registry/caching.py)
        return 0
    fields = {"model": version.model_id, "external_id": version.run_id}
    key = identity_key(NodeKind.EXTERNAL_RUN, fields)
    run_node = LineageNode.objects.filter(kind=NodeKind.EXTERNAL_RUN, key=key).first() or LineageNode.objects.create(
        kind=NodeKind.EXTERNAL_RUN, key=key, model_id=version.model_id, name=f"run {version.run_id}",
        external_id=version.run_id, properties={"verified": False}, owner=version.creator)
    if external.exclude(upstream=run_node).delete()[0]:
        caching.retire_lineage_on_commit()
    return edge_insert(upstream=run_node, downstream=node, kind=EdgeKind.TRAINED_IN, role="", actor=None)[1]


def on_domain_event(sender: Any, event: events.DomainEvent, **kwargs: Any) -> None:
    """Fill lineage inside the transaction that created or re-pointed a version (connected in apps.ready)."""
    if event.action == "model_version.created" or (
        event.action == "model_version.updated" and {"code_commit", "code_repository"} & set(event.data)
    ):
        version = event.instance
        # The creating service hands over what it wrote, its datasets prefetched.
        if not (isinstance(version, ModelVersion) and event.action == "model_version.created"):
            version = (ModelVersion.objects.select_related("model", "creator").prefetch_related("datasets")
                       .filter(pk=event.target_id).first())
        if version is None:
            return
        # A version with no datasets and no commit has nothing upstream yet: its node is made when first needed.
        if (event.action == "model_version.created" and not version.code_commit and not version.datasets.all()
                and not run_held_elsewhere(version)):
            return
        lineage_fill_from_version(version)


def lineage_backfill(*, versions: QuerySet[ModelVersion] | None = None) -> int:
    """Fill lineage for existing versions (those registered before lineage existed); return the edges added."""
    qs = versions if versions is not None else ModelVersion.objects.all()
    added = 0
    for version in qs.select_related("model", "creator").prefetch_related("datasets").order_by("pk").iterator(
            chunk_size=500):
        with transaction.atomic():
            added += lineage_fill_from_version(version)
    return added
