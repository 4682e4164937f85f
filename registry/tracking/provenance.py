"""Provenance: what a version registered from an MLflow source (a run, a logged model, a version) inherits, and
linking a version whose run was held elsewhere to that run once Stratum holds it (an import brought it in)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from registry import events, permissions
from registry.errors import InvalidInput, NotFound
from registry.lineage.features import FeatureSetSpec, feature_set_parse, feature_sets_record
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.lineage.openlineage import data_uri
from registry.lineage.services import graph_lock, lineage_fill_from_version, version_node_ensure
from registry.locking import model_lock
from registry.models import (
    Artifact,
    Blob,
    LoggedModel,
    ModelVersion,
    Run,
    RunInput,
    RunParam,
    TrackedArtifact,
    VersionDataset,
)
from registry.tracking.artifacts import artifact_root_resolve
from registry.tracking.logged_models import logged_models_visible
from registry.tracking.runs import latest_metrics, run_get, runs_visible
from registry.validation import json_loads


@dataclass
class Provenance:
    """What a version registered from a source inherits: run id, file tree, params, metrics and datasets."""

    run_id: str = ""
    files: list[tuple[str, Blob, str]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict[str, str]] = field(default_factory=list)
    # Dataset inputs logged with context "features": feature sets, with what they derive from (FEATURES_HELP)
    feature_sets: list[FeatureSetSpec] = field(default_factory=list)
    feature_set_errors: list[str] = field(default_factory=list)
    logged_model: LoggedModel | None = None
    external_run: bool = False  # the source names a run Stratum does not hold (or the actor may not see)


def _files_under(rows: QuerySet, prefix: str) -> list[tuple[str, Blob, str]]:
    prefix = prefix.strip("/")
    lead = f"{prefix}/" if prefix else ""
    out = []
    for row in rows.select_related("blob").order_by("path"):
        if row.path.startswith(lead):
            out.append((row.path[len(lead):], row.blob, row.format))
        elif prefix and row.path == prefix:  # the source names a single file
            out.append((prefix.rsplit("/", 1)[-1], row.blob, row.format))
    return out


def _safe_key(key: str) -> bool:
    return bool(key) and "__" not in key and len(key) <= 250 and not any(ord(c) < 32 for c in key)


def _dataset_uri(ds: RunInput) -> str:
    """Where a run's dataset lives: MLflow's client sends its source as JSON ({"uri": ...}); older ones plain text."""
    if ds.source_type == "code":
        return ""
    try:
        source = json.loads(ds.source)
    except ValueError:
        return ds.source
    if isinstance(source, dict):
        for key in ("uri", "url", "path"):
            if isinstance(source.get(key), str):
                return source[key]
    return ds.source


FEATURES_CONTEXT = "features"
FEATURES_HELP = ("mlflow.log_input(dataset, context='features', tags={'stratum.derived_from': 'customers@2024-05, "
                 "orders@2024-05', 'stratum.transformation_ref': 'git+https://…@<commit>#featurize.py'}); the "
                 "dataset's profile may carry derived_from, transformation_ref and version instead")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json_loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _feature_set(ds: RunInput) -> FeatureSetSpec:
    """A dataset input logged with context "features" as a feature set: named by the dataset's name and version
    (the input tag stratum.version, the profile's version, else MLflow's digest of its content); it lives at the
    dataset's source when that is a data location others can read; its sources and code reference come from the
    input tags stratum.derived_from and stratum.transformation_ref, or the same keys in its profile."""
    profile = _json_object(ds.profile)
    derived = ds.tags.get("stratum.derived_from") or profile.get("derived_from") or []
    if isinstance(derived, str):
        derived = [part.strip() for part in derived.split(",") if part.strip()]
    uri = _dataset_uri(ds)
    try:
        uri = data_uri(uri, "uri")
    except InvalidInput:
        uri = ""  # a client's local path: nobody else can read it, so the node keeps no location
    raw = {"name": ds.name, "version": ds.tags.get("stratum.version") or profile.get("version") or ds.digest,
           "derived_from": derived, "uri": uri, "schema": _json_object(ds.schema),
           "transformation_ref": ds.tags.get("stratum.transformation_ref") or profile.get("transformation_ref") or ""}
    return feature_set_parse(raw, f"Dataset input {ds.name[:80]!r} (context features)")


def _run_provenance(prov: Provenance, run: Run) -> None:
    prov.run_id = prov.run_id or run.run_id
    for key, value in RunParam.objects.filter(run=run).values_list("key", "value"):
        if _safe_key(key) and len(value) <= 6000:
            prov.params.setdefault(key, value)
    for key, metric in latest_metrics(run).items():
        if _safe_key(key) and math.isfinite(metric.value):
            prov.metrics.setdefault(key, metric.value)
    for ds in RunInput.objects.filter(run=run):
        context = str(ds.tags.get("mlflow.data.context", "")).lower()
        if context == FEATURES_CONTEXT:
            try:
                spec = _feature_set(ds)
            except InvalidInput as error:  # registration refuses it; an import or a run link warns and goes on
                prov.feature_set_errors.append(error.message)
                continue
            if all(f.label() != spec.label() for f in prov.feature_sets):
                prov.feature_sets.append(spec)
            continue
        role = {"training": "train", "train": "train", "eval": "validation", "validation": "validation",
                "test": "test"}.get(context, "train")
        prov.datasets.append({"name": ds.name[:256], "uri": _dataset_uri(ds)[:2048], "digest": ds.digest[:128],
                              "role": role})


def source_provenance(*, actor: Any, source: str, run_id: str = "", model_id: str = "") -> Provenance:
    """Resolve a validated source to the files and provenance a new version inherits (reads only, no bytes)."""
    from registry import selectors

    prov = Provenance(run_id=run_id or "")
    run: Run | None = None
    if source.startswith("models:/m-") or model_id:
        lm_id = source[len("models:/"):] if source.startswith("models:/m-") else model_id
        lm = logged_models_visible(actor).filter(pk=lm_id).first()
        # None: a logged model tracked elsewhere (MLflow 3's client registers runs:/ sources as models:/m-<id>). The
        # version inherits nothing from it; its run, which Stratum does not hold either, is external provenance.
        if lm is not None:
            prov.logged_model = lm
            if source.startswith("models:/m-"):
                prov.files = _files_under(TrackedArtifact.objects.filter(logged_model=lm), "")
            for key, value in lm.params.items():
                if _safe_key(key):
                    prov.params[key] = str(value)[:6000]
            run = lm.source_run
    if source.startswith("models:/") and not source.startswith("models:/m-"):
        rest = source[len("models:/"):]
        name, ref = rest.split("@", 1) if "@" in rest and "/" not in rest else rest.split("/", 1)
        model = selectors.model_get(actor=actor, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        prov.files = _files_under(Artifact.objects.filter(version=version), "")
        prov.params.update(version.params)
        prov.metrics.update(version.metrics)
        prov.run_id = prov.run_id or version.run_id
    elif source.startswith("runs:/"):
        rid, _, path = source[len("runs:/"):].partition("/")
        run = runs_visible(actor).filter(pk=rid).first() if rid else run_get(actor=actor, run_id=rid)
        if run is None:
            # A run tracked elsewhere (a split tracking/registry setup): the version keeps its source and run id,
            # inherits nothing, and lineage records the run as external provenance, not verified by Stratum.
            prov.run_id = prov.run_id or rid
            prov.external_run = True
        else:
            prov.files = _files_under(TrackedArtifact.objects.filter(run=run), path)
        if run is not None and not prov.files and path:
            lm = logged_models_visible(actor).filter(source_run=run, name=path.split("/")[0]).order_by(
                "-created_at").first()
            if lm is not None:
                prov.logged_model = lm
                prov.files = _files_under(TrackedArtifact.objects.filter(logged_model=lm), "/".join(
                    path.split("/")[1:]))
    elif source.startswith("mlflow-artifacts:/"):
        root = artifact_root_resolve(actor=actor, path=source[len("mlflow-artifacts:/"):])
        prov.files = _files_under(root.rows(), root.rel)
        run = run or root.run or (root.logged_model.source_run if root.logged_model else None)
    if run is None and prov.run_id:
        run = runs_visible(actor).filter(pk=prov.run_id).first()
    if run is not None:
        _run_provenance(prov, run)
    return prov


def run_provenance(run: Run) -> Provenance:
    """What a version inherits from `run`: its params, latest finite metrics and datasets (no files)."""
    prov = Provenance()
    _run_provenance(prov, run)
    return prov


def versions_awaiting_run(run_ids: list[str] | None = None) -> QuerySet[ModelVersion]:
    """Versions recorded with their run held elsewhere (an external_run lineage node) whose run Stratum now holds
    (of `run_ids`, when given): the ones version_run_link can verify."""
    held = Run.objects.filter(pk__in=run_ids) if run_ids is not None else Run.objects.all()
    external = LineageEdge.objects.filter(kind=EdgeKind.TRAINED_IN, upstream__kind=NodeKind.EXTERNAL_RUN,
                                          created_by__isnull=True).values("downstream__model_version_id")
    return (ModelVersion.objects.filter(pk__in=external, run_id__in=held.values("pk"))
            .select_related("model").order_by("model_id", "number"))


@transaction.atomic
def version_run_link(*, version: ModelVersion, actor: Any) -> bool:
    """Link a version whose run was held elsewhere to that run, now that Stratum holds it; return False when there
    was nothing to link (no external run recorded, or already linked).

    The version takes the run's params, metrics, datasets and feature sets it does not have yet (its own values
    stay; feature sets are recorded as version create records them, idempotently), its lineage loses the
    external_run node (not verified) for the run's datasets, and one `model_version.run_linked` event records it.
    From then on run_verified is true and no page says "not verified by Stratum".
    """
    model = model_lock(version.model_id)
    version = ModelVersion.objects.select_for_update(no_key=True).get(pk=version.pk)
    version.model = model
    permissions.require(permissions.can_contribute, actor, model, action="link versions to runs")
    run = Run.objects.filter(pk=version.run_id).first() if version.run_id else None
    if run is None:
        raise NotFound(f"Run with id={version.run_id} not found")
    externals = list(LineageNode.objects.filter(
        kind=NodeKind.EXTERNAL_RUN, downstream_edges__downstream__model_version=version,
        downstream_edges__kind=EdgeKind.TRAINED_IN, downstream_edges__created_by__isnull=True).distinct())
    if not externals:
        return False
    prov = run_provenance(run)
    params = {k: v for k, v in prov.params.items() if k not in version.params}
    metrics = {k: v for k, v in prov.metrics.items() if k not in version.metrics}
    if params or metrics:
        version.params = {**version.params, **params}
        version.metrics = {**version.metrics, **metrics}
        version.save(update_fields=["params", "metrics", "updated_at"])
    have = set(version.datasets.values_list("name", "uri", "digest", "role"))
    datasets = [VersionDataset(version=version, **d) for d in prov.datasets
                if (d["name"], d["uri"], d["digest"], d["role"]) not in have]
    VersionDataset.objects.bulk_create(datasets)
    graph_lock()  # the lock order of registry/locking.py: the model, its rows, the graph, the audit chain
    version = ModelVersion.objects.select_related("model", "creator").prefetch_related("datasets").get(pk=version.pk)
    lineage_fill_from_version(version)  # the run is held now: the external edge goes, the datasets come in
    feature_sets = []
    if prov.feature_sets:  # the run's dataset inputs logged with context "features", as version create takes them
        node, _ = version_node_ensure(version)
        feature_sets = feature_sets_record(actor=actor, version_node=node, specs=prov.feature_sets)
    orphans = [n.pk for n in externals if not LineageEdge.objects.filter(upstream=n).exists()]
    events.emit("model_version.run_linked", actor=actor, target=version, data={
        "model": model.name, "version": version.number, "run_id": run.run_id, "experiment": run.experiment_id,
        "params_added": sorted(params), "metrics_added": sorted(metrics),
        "datasets_added": [d.name for d in datasets], "feature_sets": feature_sets, "external_nodes_removed": orphans})
    LineageNode.objects.filter(pk__in=orphans).delete()  # deletes come after the event (registry/locking.py)
    return True
