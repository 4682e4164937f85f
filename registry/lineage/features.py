"""Feature sets as provenance: what a version declares it consumed (name, version, the datasets each derives from,
the transformation's code reference, schema), recorded as lineage `dataset -> feature set -> model version`.

The native API, the version form and the MLflow client (dataset inputs logged with context "features") all come
here: `feature_sets_parse` (structured JSON) or `feature_set_lines_parse` (the form's `name@version <- a@1, b@2`
lines) check every entry and name every fault at once; `feature_sets_record` writes under the graph lock;
`feature_sets_declare` is the service for a version that already exists; `versions_feature_sets` reads them back
for a page of versions in two queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from registry import events, permissions, validation
from registry.errors import InvalidInput, InvalidState, NotFound
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.lineage.openlineage import data_uri
from registry.lineage.selectors import visible_nodes
from registry.lineage.services import (
    edge_insert,
    graph_lock,
    identity_key,
    node_fields_clean,
    version_node_ensure,
)
from registry.locking import model_lock
from registry.models import ModelVersion

MAX_FEATURE_SETS = 100
MAX_SOURCES = 100
SOURCE_KINDS = (NodeKind.DATASET, NodeKind.FEATURE_SET, NodeKind.PREDICTION_BATCH)
FORMAT_HELP = ("one feature set per line: name@version <- dataset@version, dataset@version "
               "(optionally followed by | the transformation's code reference)")


@dataclass(frozen=True)
class SourceRef:
    """What a feature set derives from: a lineage node by id, or a dataset (or feature set) by name."""

    node: int | None = None
    name: str = ""
    version: str = ""
    uri: str = ""
    digest: str = ""

    def label(self) -> str:
        """Return the reference as a person wrote it."""
        if self.node is not None:
            return f"node {self.node}"
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclass(frozen=True)
class FeatureSetSpec:
    """One declared feature set: its identity (name, version), sources, code reference, location and schema."""

    name: str
    version: str
    derived_from: tuple[SourceRef, ...] = ()
    transformation_ref: str = ""
    uri: str = ""
    schema: Any = field(default_factory=dict)

    def label(self) -> str:
        """Return `name@version`."""
        return f"{self.name}@{self.version}"


# ------------------------------------------------------------------------------------------------ parsing


def _name_version(text: str, where: str) -> tuple[str, str]:
    name, sep, version = text.strip().rpartition("@")
    if not sep or not name.strip() or not version.strip():
        raise InvalidInput(f"{where}: {text.strip()[:80]!r} is not of the form name@version.")
    return name.strip(), version.strip()


def _source(raw: Any, where: str) -> SourceRef:
    if isinstance(raw, bool):
        raise InvalidInput(f"{where} must be a node id, 'name@version' or an object with a name.")
    if isinstance(raw, int):
        return SourceRef(node=validation.integer(raw, f"{where} node id", low=1))
    if isinstance(raw, str):
        text = validation.text(raw, where, 700, multiline=False)
        if "@" in text:
            name, version = _name_version(text, where)
        else:
            name, version = text.strip(), ""
        if not name:
            raise InvalidInput(f"{where} names no dataset.")
        return SourceRef(name=validation.text(name, f"{where} name", 500, multiline=False),
                         version=validation.text(version, f"{where} version", 128, multiline=False))
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be a node id, 'name@version' or an object with a name.")
    unknown = set(raw) - {"node", "name", "version", "uri", "digest"}
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {', '.join(sorted(map(str, unknown)))[:100]}; use node, "
                           "or name, version, uri and digest.")
    if raw.get("node") is not None:
        if len(raw) > 1:
            raise InvalidInput(f"{where}: give either a node id or a name, not both.")
        node = raw["node"]
        if isinstance(node, bool) or not isinstance(node, (int, str)):
            raise InvalidInput(f"{where} node must be an integer id.")
        return SourceRef(node=validation.integer(node, f"{where} node id", low=1))
    name = validation.text(raw.get("name"), f"{where} name", 500, multiline=False).strip()
    if not name:
        raise InvalidInput(f"{where} needs a name (or a node id).")
    return SourceRef(name=name,
                     version=validation.text(raw.get("version"), f"{where} version", 128, scalars=True,
                                             multiline=False).strip(),
                     uri=data_uri(raw.get("uri"), f"{where} uri"),
                     digest=validation.text(raw.get("digest"), f"{where} digest", 128, multiline=False).strip())


def _spec(raw: Any, where: str, errors: list[str]) -> FeatureSetSpec | None:
    """Check one feature set object; append every fault to `errors` (None when there was one)."""
    if not isinstance(raw, dict):
        errors.append(f"{where} must be an object with name, version and derived_from.")
        return None
    before = len(errors)
    unknown = set(raw) - {"name", "version", "derived_from", "transformation_ref", "uri", "schema"}
    if unknown:
        errors.append(f"{where} has unknown field(s) {', '.join(sorted(map(str, unknown)))[:100]}.")
    values: dict[str, Any] = {}
    checks = {
        "name": lambda: validation.text(raw.get("name"), f"{where} name", 500, multiline=False).strip(),
        "version": lambda: validation.text(raw.get("version"), f"{where} version", 128, scalars=True,
                                           multiline=False).strip(),
        "transformation_ref": lambda: validation.text(raw.get("transformation_ref"), f"{where} transformation_ref",
                                                      2048, multiline=False).strip(),
        "uri": lambda: data_uri(raw.get("uri"), f"{where} uri"),
        "schema": lambda: _schema(raw.get("schema"), f"{where} schema"),
    }
    for name, check in checks.items():
        try:
            values[name] = check()
        except InvalidInput as error:
            errors.append(error.message)
    if "name" in values and not values["name"]:
        errors.append(f"{where} needs a name.")
    if "version" in values and not values["version"]:
        errors.append(f"{where} needs a version (feature sets are identified by name and version).")
    sources_raw = raw.get("derived_from")
    sources: list[SourceRef] = []
    if sources_raw is None:
        sources_raw = []
    if not isinstance(sources_raw, list):
        errors.append(f"{where} derived_from must be a list of datasets.")
    elif len(sources_raw) > MAX_SOURCES:
        errors.append(f"{where} derives from more than {MAX_SOURCES} datasets.")
    else:
        for i, item in enumerate(sources_raw):
            try:
                sources.append(_source(item, f"{where} derived_from[{i}]"))
            except InvalidInput as error:
                errors.append(error.message)
    if len(errors) > before:
        return None
    return FeatureSetSpec(name=values["name"], version=values["version"], derived_from=tuple(dict.fromkeys(sources)),
                          transformation_ref=values["transformation_ref"], uri=values["uri"], schema=values["schema"])


def feature_set_parse(raw: Any, where: str) -> FeatureSetSpec:
    """Return one feature set object as a spec, or raise one InvalidInput naming every fault of it."""
    errors: list[str] = []
    spec = _spec(raw, where, errors)
    _raise_all(errors, "feature_sets")
    assert spec is not None
    return spec


def _schema(value: Any, where: str) -> Any:
    if value in (None, ""):
        return {}
    if not isinstance(value, (dict, list)):
        raise InvalidInput(f"{where} must be a JSON object or list.")
    return validation.json_data(value, where)


def _raise_all(errors: list[str], field_name: str) -> None:
    if errors:
        shown = errors[:20] + ([f"… and {len(errors) - 20} more."] if len(errors) > 20 else [])
        raise InvalidInput(" ".join(shown), details={"fields": {field_name: " ".join(shown)}, "errors": errors})


def _no_duplicates(specs: list[FeatureSetSpec], errors: list[str]) -> None:
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        if (spec.name, spec.version) in seen:
            errors.append(f"Feature set {spec.label()} is declared twice.")
        seen.add((spec.name, spec.version))


def feature_sets_parse(value: Any, field_name: str = "feature_sets") -> list[FeatureSetSpec]:
    """Return the declared feature sets of a JSON payload (a list of objects), or raise one InvalidInput naming every
    fault (details: {"fields": {field_name: …}, "errors": [...]})."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{field_name} must be a list of feature sets, each with name, version and derived_from.",
                           details={"fields": {field_name: "Must be a list of feature sets."}})
    if len(value) > MAX_FEATURE_SETS:
        raise InvalidInput(f"At most {MAX_FEATURE_SETS} feature sets per version.")
    errors: list[str] = []
    specs = [s for i, raw in enumerate(value) if (s := _spec(raw, f"{field_name}[{i}]", errors)) is not None]
    _no_duplicates(specs, errors)
    _raise_all(errors, field_name)
    return specs


def feature_sets_coerce(value: Any) -> list[FeatureSetSpec]:
    """Return `value` as specs: already parsed ones as they are, JSON through `feature_sets_parse`."""
    if isinstance(value, list) and value and all(isinstance(v, FeatureSetSpec) for v in value):
        return list(value)
    return feature_sets_parse(value)


def feature_set_lines_parse(text: str, field_name: str = "feature_sets") -> list[FeatureSetSpec]:
    """Return the feature sets of the form's lines (`name@version <- a@1, b@2 | code reference`; blank lines and
    `#` comments skipped), or raise one InvalidInput naming every bad line."""
    errors: list[str] = []
    specs: list[FeatureSetSpec] = []
    lines = [(n, raw.strip()) for n, raw in enumerate((text or "").splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if len(lines) > MAX_FEATURE_SETS:
        raise InvalidInput(f"At most {MAX_FEATURE_SETS} feature sets per version.")
    for number, line in lines:
        where = f"Line {number}"
        head, arrow, rest = line.partition("<-")
        sources_text, bar, code = rest.partition("|") if arrow else ("", "", "")
        if not arrow:
            head, bar, code = line.partition("|")
        if "@" not in head:
            errors.append(f"{where} ({line[:60]}): start with the feature set's name@version ({FORMAT_HELP}).")
            continue
        name, version = head.strip().rpartition("@")[::2]
        sources = [s.strip() for s in sources_text.split(",")] if sources_text.strip() else []
        if arrow and (not sources or any(not s for s in sources)):
            errors.append(f"{where}: list the datasets after '<-', separated by commas.")
            continue
        spec = _spec({"name": name, "version": version, "derived_from": sources,
                      "transformation_ref": code.strip() if bar else ""}, where, errors)
        if spec is not None:
            specs.append(spec)
    _no_duplicates(specs, errors)
    _raise_all(errors, field_name)
    return specs


# ------------------------------------------------------------------------------------------------ writes


def _resolve_source(actor: Any, spec: FeatureSetSpec, ref: SourceRef, owner: Any) -> LineageNode:
    """Return the node `ref` names: a visible node by id, the one visible dataset or feature set of that name (and
    version, uri, digest when given), or a new dataset node when none exists."""
    if ref.node is not None:
        node = visible_nodes(actor).filter(pk=ref.node).first()
        if node is None:
            raise NotFound(f"Feature set {spec.label()} derives from lineage node {ref.node}, which does not exist "
                           "or which you may not see; nothing was recorded.")
        if node.kind not in SOURCE_KINDS:
            raise InvalidInput(f"Feature set {spec.label()} derives from node {ref.node}, a {node.get_kind_display()}"
                               "; a feature set derives from datasets, feature sets or prediction batches.")
        return node
    found = visible_nodes(actor).filter(kind__in=(NodeKind.DATASET, NodeKind.FEATURE_SET), name=ref.name)
    for column in ("version", "uri", "digest"):
        if getattr(ref, column):
            found = found.filter(**{column: getattr(ref, column)})
    matches = list(found.order_by("pk")[:2])
    if len(matches) > 1:
        message = (f"Feature set {spec.label()}: {ref.label()} names several datasets; add its uri or digest, or "
                   "name it by its lineage node id.")
        raise InvalidInput(message, details={"fields": {"feature_sets": message}})
    if matches:
        return matches[0]
    clean = node_fields_clean(NodeKind.DATASET, {"name": ref.name, "version": ref.version, "uri": ref.uri,
                                                 "digest": ref.digest})
    return LineageNode.objects.create(kind=NodeKind.DATASET, key=identity_key(NodeKind.DATASET, clean), owner=owner,
                                      **clean)


def _feature_set_node(spec: FeatureSetSpec, owner: Any) -> tuple[LineageNode, bool]:
    clean = node_fields_clean(NodeKind.FEATURE_SET, {
        "name": spec.name, "version": spec.version, "uri": spec.uri, "transformation_ref": spec.transformation_ref,
        "schema": spec.schema})
    key = identity_key(NodeKind.FEATURE_SET, clean)
    node = LineageNode.objects.filter(kind=NodeKind.FEATURE_SET, key=key).first()
    if node is None:
        return LineageNode.objects.create(kind=NodeKind.FEATURE_SET, key=key, owner=owner, **clean), True
    # A feature set version is immutable: the same name@version with another definition is a mistake to show.
    for column in ("transformation_ref", "uri", "schema"):
        old, new = getattr(node, column), clean[column]
        if old and new and old != new:
            message = (f"Feature set {spec.label()} is already registered with another {column}; a changed "
                       "feature set is a new version.")
            raise InvalidState(message, details={"fields": {"feature_sets": message}})
    return node, False


def feature_sets_record(*, actor: Any, version_node: LineageNode, specs: list[FeatureSetSpec]
                        ) -> list[dict[str, Any]]:
    """Record each feature set (one node per name@version), `feature set derived_from source` for its sources and
    `version uses_features feature set`; the caller holds the graph lock and checked the actor may contribute to the
    version's model. A cycle or a source the actor may not see raises (the caller's transaction writes nothing).
    Return what was recorded, for the caller's audit event."""
    out = []
    for spec in specs:
        node, created = _feature_set_node(spec, actor)
        sources = []
        for ref in spec.derived_from:
            source = _resolve_source(actor, spec, ref, actor)
            try:
                edge_insert(upstream=source, downstream=node, kind=EdgeKind.DERIVED_FROM, role="", actor=actor)
            except InvalidState as error:
                message = (f"Feature set {spec.label()} cannot derive from {ref.label()}: it would close a cycle in "
                           f"the lineage graph ({error.message})")
                raise InvalidState(message, details={"fields": {"feature_sets": message}}) from None
            sources.append({"node": source.pk, "name": source.name, "version": source.version})
        try:
            _, linked = edge_insert(upstream=node, downstream=version_node, kind=EdgeKind.USES_FEATURES, role="",
                                    actor=actor)
        except InvalidState as error:
            message = f"Version {version_node.name} v{version_node.version} cannot use {spec.label()}: {error.message}"
            raise InvalidState(message, details={"fields": {"feature_sets": message}}) from None
        out.append({"node": node.pk, "name": node.name, "version": node.version, "created": created,
                    "linked": linked, "derived_from": sources})
    return out


@transaction.atomic
def feature_sets_declare(*, actor: Any, version: ModelVersion, feature_sets: list[FeatureSetSpec]
                         ) -> list[dict[str, Any]]:
    """Record the feature sets an existing version consumed (idempotent: a feature set declared again is the same
    node and edges); one audit event."""
    if not feature_sets:
        raise InvalidInput("Declare at least one feature set.")
    model = model_lock(version.model_id)
    permissions.require(permissions.can_contribute, actor, model, action="record lineage")
    graph_lock()
    node, _ = version_node_ensure(version)
    recorded = feature_sets_record(actor=actor, version_node=node, specs=feature_sets)
    events.emit("model_version.feature_sets_declared", actor=actor, target=version, data={
        "model": model.name, "version": version.number, "feature_sets": recorded})
    return recorded


# ------------------------------------------------------------------------------------------------- reads


def versions_feature_sets(version_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Return the feature sets each version uses, with the nodes each derives from, in at most two queries."""
    if not version_ids:
        return {}
    uses = list(LineageEdge.objects.filter(kind=EdgeKind.USES_FEATURES, downstream__model_version_id__in=version_ids)
                .order_by("upstream__name", "upstream__version", "upstream_id")
                .values_list("downstream__model_version_id", "upstream_id", "upstream__name", "upstream__version",
                             "upstream__uri", "upstream__transformation_ref", "upstream__schema"))
    if not uses:
        return {}
    fs_ids = {row[1] for row in uses}
    sources: dict[int, list[dict[str, Any]]] = {}
    for fs_id, pk, kind, name, version, uri in (
            # Sources scoped to a model (another model's prediction batches) stay in the graph, where visibility
            # is checked; only shared datasets and feature sets are listed here.
            LineageEdge.objects.filter(kind=EdgeKind.DERIVED_FROM, downstream_id__in=fs_ids,
                                       upstream__model__isnull=True)
            .order_by("upstream__name", "upstream__version", "upstream_id")
            .values_list("downstream_id", "upstream_id", "upstream__kind", "upstream__name", "upstream__version",
                         "upstream__uri")):
        sources.setdefault(fs_id, []).append({"node": pk, "kind": kind, "name": name, "version": version, "uri": uri})
    out: dict[int, list[dict[str, Any]]] = {}
    for version_id, fs_id, name, version, uri, transformation_ref, schema in uses:
        out.setdefault(version_id, []).append({
            "node": fs_id, "name": name, "version": version, "uri": uri, "transformation_ref": transformation_ref,
            "schema": schema, "derived_from": sources.get(fs_id, [])})
    return out
