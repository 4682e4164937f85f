"""Native API for registered models: list and search, create, edit, rename, deprecate, tags and aliases."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors, services
from registry.api import serializers as s
from registry.api.common import FILTER_PARAM, PAGE_PARAMS, WORDS_PARAM, page, valid
from registry.models import Alias, RegisteredModel, Stage
from registry.pagination import paginate


def _model_output(model: RegisteredModel) -> dict[str, Any]:
    model = (
        RegisteredModel.objects.select_related("owner", "successor")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .get(pk=model.pk)
    )
    return s.ModelOutput(model).data


# The list shares the models page's FilterSet (registry.filters.ModelFilter); pages are always ordered by name.
MODEL_LIST_PARAMS = [
    OpenApiParameter("stage", str, enum=list(Stage.values), description="Only models with a version in this stage"),
    OpenApiParameter("tag", str, description="Only models with this tag: `key` or `key=value`"),
]


class ModelListCreateApi(APIView):
    """List visible models (filter language, cursor pagination) or create one."""

    @extend_schema(operation_id="models_list", parameters=[FILTER_PARAM, WORDS_PARAM, *MODEL_LIST_PARAMS, *PAGE_PARAMS],
                   responses=inline_serializer("ModelPage", {"results": s.ModelOutput(many=True),
                                                             "next_cursor": serializers.CharField(allow_null=True)}))
    def get(self, request: Request) -> Response:
        qs = selectors.model_rows(actor=request.user, filters=request.query_params)
        rows, nxt = paginate(qs, request.query_params, [("name", False)])
        return Response(page(s.ModelOutput(selectors.model_rows_complete(rows), many=True).data, nxt))

    @extend_schema(request=s.ModelInput, responses={201: s.ModelOutput})
    def post(self, request: Request) -> Response:
        data = valid(s.ModelInput, request.data)
        model = services.model_create(actor=request.user, **data)
        return Response(_model_output(model), status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    """Get, edit or delete one model."""

    @extend_schema(responses=s.ModelOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(_model_output(selectors.model_get(actor=request.user, name=name)))

    @extend_schema(request=s.ModelUpdateInput, responses=s.ModelOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = valid(s.ModelUpdateInput, request.data)
        model = services.model_update(model=selectors.model_get(actor=request.user, name=name), actor=request.user,
                                      **data)
        return Response(_model_output(model))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.model_delete(model=selectors.model_get(actor=request.user, name=name), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelRenameApi(APIView):
    """Rename a model."""

    @extend_schema(request=s.RenameInput, responses=s.ModelOutput)
    def post(self, request: Request, name: str) -> Response:
        data = valid(s.RenameInput, request.data)
        model = services.model_rename(model=selectors.model_get(actor=request.user, name=name),
                                      actor=request.user, new_name=data["new_name"])
        return Response(_model_output(model))


class ModelDeprecateApi(APIView):
    """Deprecate a model (POST) or lift its deprecation (DELETE)."""

    @extend_schema(request=s.DeprecateInput, responses=s.ModelOutput)
    def post(self, request: Request, name: str) -> Response:
        data = valid(s.DeprecateInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        successor = selectors.model_get(actor=request.user, name=data["successor"]) if data["successor"] else None
        model = services.model_deprecate(model=model, actor=request.user, reason=data["reason"], successor=successor)
        return Response(_model_output(model))

    @extend_schema(responses={200: s.ModelOutput})
    def delete(self, request: Request, name: str) -> Response:
        model = services.model_undeprecate(model=selectors.model_get(actor=request.user, name=name),
                                           actor=request.user)
        return Response(_model_output(model))


class ModelTagApi(APIView):
    """Set or delete a model tag."""

    @extend_schema(request=s.TagInput, responses=s.ModelOutput)
    def put(self, request: Request, name: str, key: str) -> Response:
        data = valid(s.TagInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        services.model_tag_set(model=model, actor=request.user, key=key, value=data["value"])
        return Response(_model_output(model))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, key: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        services.model_tag_delete(model=model, actor=request.user, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------------------------- aliases


class AliasListApi(APIView):
    """List a model's aliases."""

    @extend_schema(operation_id="models_aliases_list", responses=s.AliasListOutput)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        aliases = Alias.objects.filter(model=model).select_related("model", "version")
        return Response({"aliases": s.AliasOutput(aliases, many=True).data})


class AliasDetailApi(APIView):
    """Resolve (GET), move (PUT) or delete an alias."""

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, name: str, alias: str) -> Response:
        return Response(s.VersionOutput(selectors.alias_resolve_by_name(actor=request.user, name=name,
                                                                        alias=alias)).data)

    @extend_schema(request=s.AliasInput, responses=s.AliasOutput)
    def put(self, request: Request, name: str, alias: str) -> Response:
        data = valid(s.AliasInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=data["version"])
        return Response(s.AliasOutput(services.alias_set(model=model, alias=alias, version=version,
                                                         actor=request.user)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, alias: str) -> Response:
        services.alias_delete(model=selectors.model_get(actor=request.user, name=name), alias=alias,
                              actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
