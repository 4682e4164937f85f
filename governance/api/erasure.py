"""Erasure API: subject manifests on dataset versions (JSON list or uploaded file), requests and obligations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.erasure import selectors, services
from governance.models import ErasureRequest, ObligationStatus
from registry.errors import InvalidInput
from registry.lineage import selectors as lineage
from registry.lineage.models import LineageNode
from registry.models import ModelVersion

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ManifestInput(serializers.Serializer):
    """Identifiers as a JSON list, or a text file (one identifier per line) in the `file` field."""

    identifiers = serializers.ListField(child=serializers.CharField(max_length=512, trim_whitespace=False),
                                        required=False, allow_empty=True)
    file = serializers.FileField(required=False)


MANIFEST_OUTPUT = inline_serializer("SubjectManifest", {
    "node": serializers.IntegerField(), "entries": serializers.IntegerField(),
    "suppressed_subjects_found": serializers.IntegerField(), "key_id": serializers.CharField()})


class SubjectManifestApi(APIView):
    """Replace a dataset version's subject manifest; identifiers are hashed on arrival and never stored."""

    @extend_schema(operation_id="subject_manifest_put", request=ManifestInput, responses=MANIFEST_OUTPUT)
    def put(self, request: Request, node_id: int) -> Response:
        data = ManifestInput(data=request.data)
        data.is_valid(raise_exception=True)
        node = lineage.node_get(actor=request.user, node_id=node_id)
        upload = data.validated_data.get("file")
        if upload is not None:
            if upload.size > MAX_MANIFEST_BYTES:
                raise InvalidInput("A manifest file is at most 64 MiB.")
            identifiers: Any = (line.decode("utf-8", "replace").strip() for line in upload)
        elif "identifiers" in data.validated_data:
            identifiers = data.validated_data["identifiers"]
        else:
            raise InvalidInput("Send `identifiers` (a JSON list) or a `file` with one identifier per line.")
        manifest = services.manifest_upload(node=node, actor=request.user, identifiers=identifiers)
        return Response({"node": node.pk, "entries": manifest.entries,
                         "suppressed_subjects_found": manifest.suppressed_hits, "key_id": manifest.key_id})


def _request_out(req: ErasureRequest) -> dict[str, Any]:
    return {
        "id": req.pk, "state": req.state, "received_on": req.received_on.isoformat(),
        "deadline": req.deadline.isoformat(), "extended": req.extended, "days_left": selectors.days_left(req),
        "overdue": selectors.is_overdue(req), "handler": req.handler.get_username() if req.handler else None,
        "key_id": req.key_id, "reingested_in": req.suppressed_reingestions,
        "obligations": [{"id": o.pk, "kind": o.kind, "item": o.label, "node": o.node_id, "duty": o.duty,
                         "status": o.status,
                         "reason": o.reason, "ground": o.exemption_ground,
                         "replacement_node": o.replacement_node_id,
                         "replacement_version": o.replacement_version.number if o.replacement_version else None,
                         "files_purged": o.files_purged or None,
                         "files_purged_at": o.files_purged_at.isoformat() if o.files_purged_at else None}
                        for o in selectors.obligations(request=req)],
    }


ERASURE_OUTPUT = inline_serializer("ErasureRequest", {
    "id": serializers.IntegerField(), "state": serializers.CharField(), "received_on": serializers.DateField(),
    "deadline": serializers.DateField(), "obligations": serializers.ListField(child=serializers.DictField())})


ERASURE_LIST = inline_serializer("ErasureRequestList", {"results": serializers.ListField(
    child=serializers.DictField())})


class ErasureCreateInput(serializers.Serializer):
    """The subject's identifier (hashed at once) and the date the request was received."""

    identifier = serializers.CharField(max_length=512)
    received_on = serializers.DateField(required=False)


class ErasureListCreateApi(APIView):
    """List erasure requests, or record one (its impact is computed at once)."""

    @extend_schema(operation_id="erasure_requests_list", responses=ERASURE_LIST)
    def get(self, request: Request) -> Response:
        return Response({"results": [_request_out(r) for r in selectors.erasure_list(actor=request.user)]})

    @extend_schema(operation_id="erasure_requests_create", request=ErasureCreateInput,
                   responses={201: ERASURE_OUTPUT})
    def post(self, request: Request) -> Response:
        data = ErasureCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.erasure_request_create(actor=request.user, identifier=data.validated_data["identifier"],
                                                  received_on=data.validated_data.get("received_on"))
        return Response(_request_out(created), status=status.HTTP_201_CREATED)


class ErasureDetailApi(APIView):
    """One request with its obligations."""

    @extend_schema(operation_id="erasure_request_get", responses=ERASURE_OUTPUT)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_request_out(selectors.erasure_get(actor=request.user, pk=pk)))


class ResolveInput(serializers.Serializer):
    """A resolution and its evidence."""

    status = serializers.ChoiceField(choices=[c for c in ObligationStatus.values if c != ObligationStatus.PENDING])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    replacement_node = serializers.IntegerField(required=False, min_value=1)
    replacement_version = serializers.IntegerField(required=False, min_value=1)
    ground = serializers.CharField(required=False, allow_blank=True, max_length=1, default="")


class ObligationPurgeFilesApi(APIView):
    """Delete the stored files of an affected dataset now; the evidence is kept on the obligation."""

    @extend_schema(operation_id="erasure_obligation_purge_files", request=None, responses=ERASURE_OUTPUT)
    def post(self, request: Request, pk: int, obligation_id: int) -> Response:
        req = selectors.erasure_get(actor=request.user, pk=pk)
        obligation = req.obligations.filter(pk=obligation_id).first()
        if obligation is None:
            raise InvalidInput(f"Request #{req.pk} has no obligation {obligation_id}.")
        services.obligation_purge_files(obligation=obligation, actor=request.user)
        return Response(_request_out(selectors.erasure_get(actor=request.user, pk=pk)))


class ObligationResolveApi(APIView):
    """Resolve one obligation of a request."""

    @extend_schema(operation_id="erasure_obligation_resolve", request=ResolveInput, responses=ERASURE_OUTPUT)
    def post(self, request: Request, pk: int, obligation_id: int) -> Response:
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        req = selectors.erasure_get(actor=request.user, pk=pk)
        obligation = req.obligations.select_related("node__model_version").filter(pk=obligation_id).first()
        if obligation is None:
            raise InvalidInput(f"Request #{req.pk} has no obligation {obligation_id}.")
        node = LineageNode.objects.filter(pk=body["replacement_node"]).first() if body.get("replacement_node") \
            else None
        version = None
        if body.get("replacement_version") and obligation.node and obligation.node.model_version:
            version = ModelVersion.objects.filter(model_id=obligation.node.model_version.model_id,
                                                  number=body["replacement_version"]).first()
        services.obligation_resolve(obligation=obligation, actor=request.user, status=body["status"],
                                    reason=body["reason"], replacement_node=node, replacement_version=version,
                                    ground=body["ground"])
        return Response(_request_out(selectors.erasure_get(actor=request.user, pk=pk)))


class ErasureCloseApi(APIView):
    """Close a request whose obligations are all resolved."""

    @extend_schema(operation_id="erasure_request_close", request=None, responses=ERASURE_OUTPUT)
    def post(self, request: Request, pk: int) -> Response:
        req = services.erasure_request_close(request=selectors.erasure_get(actor=request.user, pk=pk),
                                             actor=request.user)
        return Response(_request_out(req))
