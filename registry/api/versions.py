"""Native API for model versions: list, search, register (JSON or multipart), edit, stage, deprecate and tags."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors, services
from registry.api import serializers as s
from registry.api.common import FILTER_PARAM, PAGE_PARAMS, WORDS_PARAM, UploadApi, page, uploaded_files, valid
from registry.models import ModelVersion
from registry.pagination import paginate


def _version_output(version: ModelVersion) -> dict[str, Any]:
    return s.VersionOutput(selectors.version_queryset().get(pk=version.pk)).data


VERSION_PAGE = inline_serializer("VersionPage", {"results": s.VersionOutput(many=True),
                                                 "next_cursor": serializers.CharField(allow_null=True)})


class VersionListCreateApi(UploadApi):
    """List a model's versions, or register a new one (JSON, or multipart with `file` parts)."""

    @extend_schema(operation_id="model_versions_list", parameters=[FILTER_PARAM, WORDS_PARAM, *PAGE_PARAMS],
                   responses=VERSION_PAGE)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        qs = selectors.version_rows(actor=request.user, model=model, filter_string=request.query_params.get("filter"),
                                    words=request.query_params.get("q"))
        rows, nxt = paginate(qs, request.query_params, [("number", True)])
        return Response(page(s.VersionOutput(selectors.version_rows_complete(rows), many=True).data, nxt))

    @extend_schema(
        request={"application/json": s.VersionInput, "multipart/form-data": inline_serializer(
            "VersionUpload", {"file": serializers.ListField(child=serializers.FileField()),
                              "path": serializers.ListField(child=serializers.CharField(), required=False)})},
        responses={201: s.VersionOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        files = uploaded_files(request) if request.content_type.startswith("multipart/") else []
        try:
            data = valid(s.VersionInput, request.data)
            model = selectors.model_get(actor=request.user, name=name)
        except BaseException:
            for _, upload in files:
                upload.discard()
            raise
        version = services.version_create(model=model, actor=request.user, files=files, **data)
        # version_create hands back the version with everything it wrote attached: no need to read it back.
        return Response(s.VersionOutput(version).data, status=status.HTTP_201_CREATED)


class VersionSearchApi(APIView):
    """Search versions across every visible model."""

    @extend_schema(parameters=[FILTER_PARAM, WORDS_PARAM, *PAGE_PARAMS], responses=VERSION_PAGE)
    def get(self, request: Request) -> Response:
        qs = selectors.version_rows(actor=request.user, filter_string=request.query_params.get("filter"),
                                    words=request.query_params.get("q"))
        rows, nxt = paginate(qs, request.query_params, [("model__name", False), ("number", True)])
        return Response(page(s.VersionOutput(selectors.version_rows_complete(rows), many=True).data, nxt))


class VersionDetailApi(APIView):
    """Get (by number, 'latest' or alias), edit or delete one version."""

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        return Response(s.VersionOutput(selectors.version_resolve(model=model, ref=ref)).data)

    @extend_schema(request=s.VersionUpdateInput, responses=s.VersionOutput)
    def patch(self, request: Request, name: str, ref: str) -> Response:
        data = valid(s.VersionUpdateInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = services.version_update(version=selectors.version_get(model=model, number=ref),
                                          actor=request.user, **data)
        return Response(_version_output(version))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        services.version_delete(version=selectors.version_get(model=model, number=ref), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionStageApi(APIView):
    """Transition a version's stage."""

    @extend_schema(request=s.StageInput, responses=s.VersionOutput)
    def post(self, request: Request, name: str, ref: str) -> Response:
        data = valid(s.StageInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = services.version_transition_stage(
            version=selectors.version_get(model=model, number=ref), actor=request.user, **data
        )
        return Response(_version_output(version))


class VersionDeprecateApi(APIView):
    """Deprecate a version, naming a successor version number of the same model if any."""

    @extend_schema(request=s.DeprecateInput, responses=s.VersionOutput)
    def post(self, request: Request, name: str, ref: str) -> Response:
        data = valid(s.DeprecateInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        successor = selectors.version_get(model=model, number=data["successor"]) if data["successor"] else None
        version = services.version_deprecate(version=version, actor=request.user, reason=data["reason"],
                                             successor=successor)
        return Response(_version_output(version))


class VersionTagApi(APIView):
    """Set or delete a version tag."""

    @extend_schema(request=s.TagInput, responses=s.VersionOutput)
    def put(self, request: Request, name: str, ref: str, key: str) -> Response:
        data = valid(s.TagInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        services.version_tag_set(version=version, actor=request.user, key=key, value=data["value"])
        return Response(_version_output(version))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, ref: str, key: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        services.version_tag_delete(version=selectors.version_get(model=model, number=ref), actor=request.user,
                                    key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
