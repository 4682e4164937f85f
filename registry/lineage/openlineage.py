"""OpenLineage in and out: run events from schedulers and data tools (Airflow, Spark, dbt) become dataset and
feature-set nodes with derived_from edges; a version's lineage goes out as OpenLineage run events.

Incoming events are checked field by field and then built as `openlineage-python` model objects (whose validators
check the run id, event time and URIs), so what is accepted is what the specification's own client would emit. Only
COMPLETE events write (an output exists once its run completed); other event types are acknowledged and ignored.
An output dataset is a feature set when it carries Stratum's dataset facet `{"stratum": {"kind": "feature_set"}}`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from openlineage.client import event_v2 as ol
from openlineage.client.generated.base import EventType
from openlineage.client.serde import Serde

from registry.errors import InvalidInput
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.lineage.services import edge_create, node_create
from registry.models import ModelVersion

PRODUCER = "https://github.com/stratum-registry/stratum"
MAX_DATASETS = 200
NAMESPACE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]{0,31})(?P<rest>://[^\s\x00-\x1f]{1,1000})?")
DATA_URI = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]{0,31})://[^\s\x00-\x1f\x7f-\x9f]{1,2000}")
# Dataset namespaces of the OpenLineage naming specification (what Airflow, Spark and dbt emit); `file` is not
# among them: Stratum never records local paths.
DEFAULT_SCHEMES = ("postgres", "postgresql", "mysql", "mssql", "sqlserver", "oracle", "db2", "teradata", "redshift",
                   "snowflake", "bigquery", "athena", "glue", "hive", "trino", "presto", "spanner", "clickhouse",
                   "databricks", "dbfs", "s3", "s3a", "gs", "gcs", "abfss", "wasbs", "hdfs", "kafka", "iceberg",
                   "cassandra", "mongodb", "azurekusto", "feast", "stratum")


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"OpenLineage event: {field} must be a non-empty string.")
    if len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise InvalidInput(f"OpenLineage event: {field} is longer than {limit} characters or has control "
                           "characters.")
    return value


def _namespace(value: Any, field: str) -> str:
    text = _text(value, field, 1000)
    match = NAMESPACE.fullmatch(text)
    schemes = getattr(settings, "STRATUM_OPENLINEAGE_SCHEMES", DEFAULT_SCHEMES)
    if match is None or match.group("scheme") not in schemes:
        raise InvalidInput(f"OpenLineage event: unknown dataset namespace {text[:100]!r} in {field}; use one of the "
                           f"naming specification's schemes ({', '.join(schemes[:8])}, …), e.g. "
                           "postgres://db.example:5432 or s3://bucket.")
    return text


def data_uri(value: Any, field: str) -> str:
    """Return `value` when it is a data location other hosts can read: `<scheme>://…` with a scheme of the naming
    specification's allow-list (s3, gs, hdfs, postgres …; never file:), at most 2,048 characters, no whitespace or
    control characters; raise InvalidInput naming `field` otherwise. Empty stays empty."""
    if value in (None, ""):
        return ""
    text = _text(value, field, 2048)
    match = DATA_URI.fullmatch(text)
    schemes = getattr(settings, "STRATUM_OPENLINEAGE_SCHEMES", DEFAULT_SCHEMES)
    if match is None or match.group("scheme") not in schemes:
        raise InvalidInput(f"{field} {text[:100]!r} is not a data location Stratum accepts; use <scheme>://… with "
                           f"one of {', '.join(schemes[:10])}, … (local paths and file: are refused).")
    return text


def _facets(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise InvalidInput(f"OpenLineage event: {field} must be an object of facet objects.")
    return value


def _dataset(raw: Any, field: str, cls: type) -> ol.Dataset:
    if not isinstance(raw, dict):
        raise InvalidInput(f"OpenLineage event: {field} must be an object with namespace and name.")
    facets = _facets(raw.get("facets"), f"{field}.facets")
    dataset = cls(namespace=_namespace(raw.get("namespace"), f"{field}.namespace"),
                  name=_text(raw.get("name"), f"{field}.name", 500))
    dataset.facets = facets  # kept as plain dicts: Stratum reads the few it knows (schema, version, stratum)
    return dataset


def parse_run_event(raw: Any) -> ol.RunEvent:
    """Build an `openlineage-python` RunEvent from a decoded JSON body, or raise InvalidInput naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput("An OpenLineage run event is a JSON object.")
    run, job = raw.get("run"), raw.get("job")
    if not isinstance(run, dict) or not isinstance(job, dict):
        raise InvalidInput("OpenLineage event: run and job are required objects.")
    inputs, outputs = raw.get("inputs") or [], raw.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise InvalidInput("OpenLineage event: inputs and outputs must be lists.")
    if len(inputs) + len(outputs) > MAX_DATASETS:
        raise InvalidInput(f"OpenLineage event: at most {MAX_DATASETS} datasets per event.")
    event_type = raw.get("eventType")
    try:
        kind = EventType(event_type) if event_type is not None else None
    except ValueError:
        raise InvalidInput(f"OpenLineage event: eventType {str(event_type)[:40]!r} is not one of "
                           f"{', '.join(e.value for e in EventType)}.") from None
    try:
        return ol.RunEvent(
            eventTime=_text(raw.get("eventTime"), "eventTime", 64), producer=_text(raw.get("producer"), "producer",
                                                                                   2048),
            run=ol.Run(runId=_text(run.get("runId"), "run.runId", 64)),
            job=ol.Job(namespace=_text(job.get("namespace"), "job.namespace", 500),
                       name=_text(job.get("name"), "job.name", 500)),
            eventType=kind,
            inputs=[_dataset(d, f"inputs[{i}]", ol.InputDataset) for i, d in enumerate(inputs)],
            outputs=[_dataset(d, f"outputs[{i}]", ol.OutputDataset) for i, d in enumerate(outputs)])
    except (ValueError, TypeError, OverflowError) as error:  # the model's validators: run id, event time
        raise InvalidInput(f"OpenLineage event: {error}") from None


def _node_fields(dataset: ol.Dataset, event: ol.RunEvent, *, output: bool) -> tuple[str, dict[str, Any]]:
    facets = dataset.facets or {}
    stratum = facets.get("stratum") or {}
    kind = NodeKind.FEATURE_SET if output and stratum.get("kind") == "feature_set" else NodeKind.DATASET
    version = (facets.get("version") or {}).get("datasetVersion") or stratum.get("version") or ""
    fields = (facets.get("schema") or {}).get("fields") or []
    schema = {"fields": [{"name": str(f.get("name", ""))[:200], "type": str(f.get("type", ""))[:100]}
                         for f in fields if isinstance(f, dict)][:500]} if fields else {}
    uri = f"{dataset.namespace}/{dataset.name}" if "://" in dataset.namespace else f"{dataset.namespace}:{dataset.name}"
    out: dict[str, Any] = {"name": dataset.name, "uri": uri[:2048], "version": str(version)[:128], "schema": schema}
    if output:
        out["transformation_ref"] = f"openlineage:{event.job.namespace}/{event.job.name}@{event.run.runId}"[:2048]
    return kind, out


@transaction.atomic
def openlineage_ingest(*, actor: Any, raw: Any) -> dict[str, Any]:
    """Record a COMPLETE run event: a node per input and output dataset (feature sets where marked), and an edge
    `output derived_from input` for each pair; one transaction, so a cycle or a refused node writes nothing."""
    event = parse_run_event(raw)
    if event.eventType != EventType.COMPLETE:
        return {"recorded": False, "reason": f"{event.eventType.value if event.eventType else 'no'} event: lineage "
                                             "is recorded from COMPLETE events", "nodes": [], "edges": []}
    inputs = [node_create(actor=actor, kind=kind, **fields).obj
              for kind, fields in (_node_fields(d, event, output=False) for d in event.inputs or [])]
    outputs = [node_create(actor=actor, kind=kind, **fields).obj
               for kind, fields in (_node_fields(d, event, output=True) for d in event.outputs or [])]
    edges = [edge_create(actor=actor, upstream=up, downstream=down, kind=EdgeKind.DERIVED_FROM).obj
             for down in outputs for up in inputs if up.pk != down.pk]
    return {"recorded": True, "nodes": [n.pk for n in [*inputs, *outputs]], "edges": [e.pk for e in edges]}


def _as_dataset(node: LineageNode, cls: type, namespace: str) -> ol.Dataset:
    if node.kind == NodeKind.MODEL_VERSION:
        return cls(namespace=namespace, name=f"models/{node.name}/versions/{node.version}")
    if node.kind == NodeKind.DEPLOYMENT:
        return cls(namespace=namespace, name=f"deployments/{node.name}")
    scheme, sep, rest = node.uri.partition("://")
    if sep and rest.endswith("/" + node.name):
        return cls(namespace=f"{scheme}://{rest[: -len(node.name) - 1]}", name=node.name)
    return cls(namespace=namespace, name=f"{node.kind}s/{node.name}{'@' + node.version if node.version else ''}")


def version_openlineage(*, version: ModelVersion, namespace: str) -> list[dict[str, Any]]:
    """A version's lineage as OpenLineage COMPLETE run events: its training (datasets and feature sets in, the
    version out) and each deployment (the version in, the deployment out); run ids are stable per node."""
    node = LineageNode.objects.filter(model_version=version).first()
    if node is None:
        return []
    ups = list(LineageEdge.objects.filter(downstream=node, kind__in=[EdgeKind.TRAINED_ON, EdgeKind.USES_FEATURES])
               .select_related("upstream"))
    downs = list(LineageEdge.objects.filter(upstream=node, kind=EdgeKind.DEPLOYED_AS).select_related("downstream"))
    when = version.created_at.isoformat()
    events = [ol.RunEvent(
        eventTime=when, producer=PRODUCER, eventType=EventType.COMPLETE,
        run=ol.Run(runId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/train/{node.pk}"))),
        job=ol.Job(namespace="stratum", name=f"models/{version.model.name}/train"),
        inputs=[_as_dataset(e.upstream, ol.InputDataset, namespace) for e in ups],
        outputs=[_as_dataset(node, ol.OutputDataset, namespace)])]
    for edge in downs:
        events.append(ol.RunEvent(
            eventTime=edge.created_at.isoformat(), producer=PRODUCER, eventType=EventType.COMPLETE,
            run=ol.Run(runId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/deploy/{edge.downstream_id}"))),
            job=ol.Job(namespace="stratum", name=f"deployments/{edge.downstream.name}"),
            inputs=[_as_dataset(node, ol.InputDataset, namespace)],
            outputs=[_as_dataset(edge.downstream, ol.OutputDataset, namespace)]))
    return [Serde.to_dict(e) for e in events]
