"""Lineage API: register nodes and edges, walk upstream/downstream to a depth, and list a node's impact."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors
from registry.api.common import PAGE_PARAMS
from registry.api.serializers import JSONOrTextField
from registry.errors import InvalidInput, NotFound
from registry.lineage import features, offline, openlineage
from registry.lineage import selectors as lineage
from registry.lineage import services as lineage_services
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import DatasetRole


def node_output(node: LineageNode, depth: int | None = None) -> dict[str, Any]:
    """Return a node as JSON-ready data."""
    version = node.model_version
    out: dict[str, Any] = {
        "id": node.pk, "kind": node.kind, "name": node.name, "version": node.version, "uri": node.uri,
        "digest": node.digest, "row_count": node.row_count, "schema": node.schema,
        "contains_personal_data": node.contains_personal_data, "repository": node.repository,
        "commit": node.commit, "transformation_ref": node.transformation_ref, "external_id": node.external_id,
        "endpoint": node.endpoint,
        "window_start": node.window_start.isoformat() if node.window_start else None,
        "window_end": node.window_end.isoformat() if node.window_end else None,
        "properties": node.properties, "model": node.model.name if node.model_id else None,
        "model_version": None if version is None else {
            "model": version.model.name, "version": version.number, "stage": version.stage,
            "deprecated": version.deprecated},
        "created_at": node.created_at.isoformat(),
        "url": reverse("registry:lineage-node", args=[node.pk]),
    }
    if depth is not None:
        out["depth"] = depth
    return out


def edge_output(edge: LineageEdge) -> dict[str, Any]:
    """Return an edge as JSON-ready data."""
    return {"id": edge.pk, "upstream": edge.upstream_id, "downstream": edge.downstream_id, "kind": edge.kind,
            "role": edge.role, "auto": edge.created_by_id is None, "created_at": edge.created_at.isoformat()}


class NodeInput(serializers.Serializer):
    """A lineage node to register; identity fields decide whether it already exists."""

    kind = serializers.ChoiceField(choices=NodeKind.choices)
    name = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    version = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    uri = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    digest = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    row_count = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    schema = serializers.JSONField(required=False, default=dict)
    contains_personal_data = serializers.BooleanField(required=False, default=False)
    repository = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    commit = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    transformation_ref = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    endpoint = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    window_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    window_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    properties = serializers.JSONField(required=False, default=dict)
    model = serializers.CharField(max_length=256, required=False, allow_blank=True, default="",
                                  help_text="Registered model the node belongs to (model_version, converted "
                                            "artifact, deployment, prediction batch)")
    model_version = serializers.CharField(max_length=64, required=False, allow_blank=True, default="",
                                          help_text="For kind=model_version: version number or alias of `model`")


class EdgeInput(serializers.Serializer):
    """A typed edge: `downstream` <kind> `upstream` (e.g. a model version trained_on a dataset)."""

    upstream = serializers.IntegerField(min_value=1)
    downstream = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=EdgeKind.choices)
    role = serializers.ChoiceField(choices=DatasetRole.choices, required=False, allow_blank=True, default="")


class LineageNodeCreateApi(APIView):
    """Register a lineage node (201), or return the existing node with the same identity (200)."""

    @extend_schema(operation_id="lineage_node_create", request=NodeInput, responses={200: OpenApiTypes.OBJECT,
                                                                                      201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Register the node."""
        ser = NodeInput(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        model_name, version_ref = data.pop("model"), data.pop("model_version")
        model = selectors.model_get(actor=request.user, name=model_name) if model_name else None
        version = None
        if data["kind"] == NodeKind.MODEL_VERSION:
            if model is None or not version_ref:
                raise InvalidInput("A model_version node needs `model` and `model_version`.")
            version, model = selectors.version_resolve(model=model, ref=version_ref), None
        elif version_ref:
            raise InvalidInput("Only model_version nodes take `model_version`.")
        result = lineage_services.node_create(actor=request.user, model=model, model_version=version, **data)
        node = lineage.node_get(actor=request.user, node_id=result.obj.pk)
        return Response(node_output(node), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class LineageEdgeCreateApi(APIView):
    """Record an edge between two visible nodes (201, or 200 when it exists); a cycle is refused with 409."""

    @extend_schema(operation_id="lineage_edge_create", request=EdgeInput, responses={200: OpenApiTypes.OBJECT,
                                                                                      201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Record the edge."""
        ser = EdgeInput(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        upstream = lineage.node_get(actor=request.user, node_id=data["upstream"])
        downstream = lineage.node_get(actor=request.user, node_id=data["downstream"])
        result = lineage_services.edge_create(actor=request.user, upstream=upstream, downstream=downstream,
                                     kind=data["kind"], role=data["role"])
        return Response(edge_output(result.obj),
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


def _depth(raw: str | None) -> int:
    if raw in (None, ""):
        return lineage.DEFAULT_DEPTH
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):  # '³'.isdigit() too, but int() refuses it
        raise InvalidInput(f"depth must be an integer from 1 to {lineage.MAX_DEPTH}.")
    return int(raw)


def graph_output(graph: lineage.Graph) -> dict[str, Any]:
    """Return a walked subgraph as JSON-ready data."""
    return {"node": node_output(graph.focus), "direction": graph.direction, "depth": graph.depth,
            "truncated": graph.truncated,
            "nodes": [node_output(n, graph.depths.get(n.pk)) for n in graph.nodes],
            "edges": [edge_output(e) for e in graph.edges]}


class LineageNodeApi(APIView):
    """A node with its ancestors and/or descendants to a depth, and the edges between them."""

    @extend_schema(operation_id="lineage_node_graph", parameters=[
        OpenApiParameter("direction", str, enum=["upstream", "downstream", "both"], description="default both"),
        OpenApiParameter("depth", int, description=f"1..{lineage.MAX_DEPTH}, default {lineage.DEFAULT_DEPTH}"),
    ], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, node_id: int) -> Response:
        """Return the walked subgraph."""
        node = lineage.node_get(actor=request.user, node_id=node_id)
        graph = lineage.lineage_walk(actor=request.user, node=node,
                                     direction=request.query_params.get("direction") or "both",
                                     depth=_depth(request.query_params.get("depth")))
        return Response(graph_output(graph))


class LineageImpactApi(APIView):
    """What a node (e.g. a dataset version) reaches downstream: how many visible model versions and deployments,
    per model, and a page of them."""

    @extend_schema(operation_id="lineage_node_impact", parameters=PAGE_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, node_id: int) -> Response:
        """Return the counts and one page of impacted versions and deployments ({"results", "next_cursor"})."""
        node = lineage.node_get(actor=request.user, node_id=node_id)
        impact = lineage.lineage_impact_summary(actor=request.user, node=node, params=request.query_params)
        return Response({"node": node_output(node), **impact})


class LineageVersionApi(APIView):
    """The lineage node of a model version, with its graph (the version's node is created when missing)."""

    @extend_schema(operation_id="lineage_version_graph", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        """Return the version's subgraph."""
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        node = lineage.node_for_version(version=version)
        if node is None:
            raise NotFound(f"Version {version.number} of {model.name!r} has no lineage yet.")
        node = lineage.node_get(actor=request.user, node_id=node.pk)
        graph = lineage.lineage_walk(actor=request.user, node=node,
                                     direction=request.query_params.get("direction") or "both",
                                     depth=_depth(request.query_params.get("depth")))
        return Response(graph_output(graph))


class OpenLineageIngestApi(APIView):
    """Accept an OpenLineage run event (Airflow, Spark, dbt …): COMPLETE events record datasets, feature sets
    (outputs with the facet {"stratum": {"kind": "feature_set"}}) and derived_from edges."""

    @extend_schema(operation_id="lineage_openlineage_ingest", request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Record the event (201), or acknowledge an event type that records nothing (200)."""
        result = openlineage.openlineage_ingest(actor=request.user, raw=request.data)
        return Response(result, status=status.HTTP_201_CREATED if result["recorded"] else status.HTTP_200_OK)


class OpenLineageVersionApi(APIView):
    """A version's lineage as OpenLineage run events (its training and its deployments)."""

    @extend_schema(operation_id="lineage_version_openlineage", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        """Return {"events": [...]} in OpenLineage's JSON form."""
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        namespace = f"stratum://{request.get_host()}"
        return Response({"events": openlineage.version_openlineage(version=version, namespace=namespace)})


class FeatureSetsInput(serializers.Serializer):
    """Feature sets to declare on an existing version."""

    feature_sets = JSONOrTextField(help_text="As on version registration: a list of {name, version, derived_from, "
                                             "transformation_ref, uri, schema}.")


def _version(request: Request, name: str, ref: str) -> Any:
    model = selectors.model_get(actor=request.user, name=name)
    return selectors.version_resolve(model=model, ref=ref)


class VersionFeatureSetsApi(APIView):
    """The feature sets a version consumed: list them, or declare more (dataset -> feature set -> version)."""

    @extend_schema(operation_id="version_feature_sets_list", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        """Return {"feature_sets": [...]}."""
        version = _version(request, name, ref)
        return Response({"feature_sets": features.versions_feature_sets([version.pk]).get(version.pk, [])})

    @extend_schema(operation_id="version_feature_sets_declare", request=FeatureSetsInput,
                   responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        """Record the feature sets (201), or acknowledge ones already recorded (200)."""
        version = _version(request, name, ref)
        if not isinstance(request.data, dict):
            raise InvalidInput('The body is a JSON object: {"feature_sets": [...]}.')
        specs = features.feature_sets_parse(request.data.get("feature_sets"))
        recorded = features.feature_sets_declare(actor=request.user, version=version, feature_sets=specs)
        new = any(row["created"] or row["linked"] for row in recorded)
        return Response({"recorded": recorded,
                         "feature_sets": features.versions_feature_sets([version.pk]).get(version.pk, [])},
                        status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


class PredictionBatchInput(serializers.Serializer):
    """An offline scoring run's output: where the predictions are, how many rows, optional window and digests."""

    uri = serializers.CharField(max_length=2048, help_text="Where the predictions were written (s3://, gs://, "
                                                          "hdfs://, a warehouse table …; never a local path)")
    row_count = serializers.IntegerField(min_value=0)
    window_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    window_end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    input_digest = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    output_digest = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class VersionPredictionBatchesApi(APIView):
    """A version's prediction batches (gateway and offline): list them, or register an offline scoring output."""

    @extend_schema(operation_id="version_prediction_batches_list", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, ref: str) -> Response:
        """Return {"prediction_batches": [...]} (at most the newest 500)."""
        version = _version(request, name, ref)
        rows = list(offline.version_prediction_batches(version=version)[:500])
        return Response({"prediction_batches": [node_output(n) for n in rows]})

    @extend_schema(operation_id="version_prediction_batch_register", request=PredictionBatchInput,
                   responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, ref: str) -> Response:
        """Register the batch (201), or return the one already registered for that output (200)."""
        version = _version(request, name, ref)
        ser = PredictionBatchInput(data=request.data)
        ser.is_valid(raise_exception=True)
        result = offline.prediction_batch_register(actor=request.user, version=version, **ser.validated_data)
        node = lineage.node_get(actor=request.user, node_id=result.obj.pk)
        return Response(node_output(node), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
