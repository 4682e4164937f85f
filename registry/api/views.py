"""Native REST API views: validate input, call one selector or service, render. Nothing else."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Prefetch
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import access, selectors, services
from registry.api import serializers as s
from registry.artifacts.formats import content_type_for
from registry.artifacts.storage import blob_open, iter_range, spool_stream
from registry.errors import InvalidInput, NotFound, UploadTooLarge
from registry.models import AccessToken, Alias, ModelRole, ModelVersion, RegisteredModel, Role
from registry.pagination import paginate

FILTER_PARAM = OpenApiParameter(
    "filter", str, description="Search filter, e.g. name LIKE 'churn%' AND tags.team = 'ml'"
)
PAGE_PARAMS = [
    OpenApiParameter("max_results", int, description="Page size, 1..1000 (default 100)"),
    OpenApiParameter("cursor", str, description="Opaque cursor from the previous page's next_cursor"),
]


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def _page(results: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"results": results, "next_cursor": next_cursor}


def _model_output(model: RegisteredModel) -> dict[str, Any]:
    model = (
        RegisteredModel.objects.select_related("owner", "successor")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .get(pk=model.pk)
    )
    return s.ModelOutput(model).data


def _version_output(version: ModelVersion) -> dict[str, Any]:
    return s.VersionOutput(selectors.version_queryset().get(pk=version.pk)).data


class RawBodyParser(BaseParser):
    """Accept a raw body; views stream it from the request themselves."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover - views never call it
        return stream


def _check_upload_length(request: Request) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("Invalid Content-Length.")
    # Multipart bodies carry boundaries and form fields too: allow a little framing on top of the limit.
    if length > settings.MAX_UPLOAD_BYTES + 1024 * 1024:
        raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")


def _uploaded_files(request: Request) -> list[tuple[str, Any]]:
    """Return (path, SpooledUpload) pairs from multipart `file` parts, paths from `path` fields or file names."""
    _check_upload_length(request)
    files = request.FILES.getlist("file")
    if getattr(request._request, "stratum_upload_too_large", False):
        raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")
    paths = request.data.getlist("path") if hasattr(request.data, "getlist") else []
    if paths and len(paths) != len(files):
        raise InvalidInput("Give one 'path' per 'file' part, or none to use the file names.")
    out = []
    for i, f in enumerate(files):
        spooled = getattr(f, "spooled", None)
        if spooled is None:  # pragma: no cover - only if the upload handler setting is changed
            raise InvalidInput("Uploads must go through Stratum's upload handler.")
        out.append((paths[i] if paths else f.name, spooled))
    return out


# ------------------------------------------------------------------------------------------------ models


class ModelListCreateApi(APIView):
    """List visible models (filter language, cursor pagination) or create one."""

    @extend_schema(operation_id="models_list", parameters=[FILTER_PARAM, *PAGE_PARAMS],
                   responses=inline_serializer("ModelPage", {"results": s.ModelOutput(many=True),
                                                             "next_cursor": serializers.CharField(allow_null=True)}))
    def get(self, request: Request) -> Response:
        qs = selectors.model_list(actor=request.user, filter_string=request.query_params.get("filter"))
        rows, nxt = paginate(qs, request.query_params, [("name", False)])
        return Response(_page(s.ModelOutput(rows, many=True).data, nxt))

    @extend_schema(request=s.ModelInput, responses={201: s.ModelOutput})
    def post(self, request: Request) -> Response:
        data = _valid(s.ModelInput, request.data)
        model = services.model_create(actor=request.user, **data)
        return Response(_model_output(model), status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    """Get, edit or delete one model."""

    @extend_schema(responses=s.ModelOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(_model_output(selectors.model_get(actor=request.user, name=name)))

    @extend_schema(request=s.ModelUpdateInput, responses=s.ModelOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = _valid(s.ModelUpdateInput, request.data)
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
        data = _valid(s.RenameInput, request.data)
        model = services.model_rename(model=selectors.model_get(actor=request.user, name=name),
                                      actor=request.user, new_name=data["new_name"])
        return Response(_model_output(model))


class ModelDeprecateApi(APIView):
    """Deprecate a model (POST) or lift its deprecation (DELETE)."""

    @extend_schema(request=s.DeprecateInput, responses=s.ModelOutput)
    def post(self, request: Request, name: str) -> Response:
        data = _valid(s.DeprecateInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        successor = selectors.model_get(actor=request.user, name=data["successor"]) if data["successor"] else None
        model = services.model_deprecate(model=model, actor=request.user, reason=data["reason"], successor=successor)
        return Response(_model_output(model))

    @extend_schema(responses=s.ModelOutput)
    def delete(self, request: Request, name: str) -> Response:
        model = services.model_undeprecate(model=selectors.model_get(actor=request.user, name=name),
                                           actor=request.user)
        return Response(_model_output(model))


class ModelTagApi(APIView):
    """Set or delete a model tag."""

    @extend_schema(request=s.TagInput, responses=s.ModelOutput)
    def put(self, request: Request, name: str, key: str) -> Response:
        data = _valid(s.TagInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        services.model_tag_set(model=model, actor=request.user, key=key, value=data["value"])
        return Response(_model_output(model))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, key: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        services.model_tag_delete(model=model, actor=request.user, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------------------------- versions

VERSION_PAGE = inline_serializer("VersionPage", {"results": s.VersionOutput(many=True),
                                                 "next_cursor": serializers.CharField(allow_null=True)})


class VersionListCreateApi(APIView):
    """List a model's versions, or register a new one (JSON, or multipart with `file` parts)."""

    @extend_schema(operation_id="model_versions_list", parameters=[FILTER_PARAM, *PAGE_PARAMS],
                   responses=VERSION_PAGE)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        qs = selectors.version_list(actor=request.user, model=model, filter_string=request.query_params.get("filter"))
        rows, nxt = paginate(qs, request.query_params, [("number", True)])
        return Response(_page(s.VersionOutput(rows, many=True).data, nxt))

    @extend_schema(
        request={"application/json": s.VersionInput, "multipart/form-data": inline_serializer(
            "VersionUpload", {"file": serializers.ListField(child=serializers.FileField()),
                              "path": serializers.ListField(child=serializers.CharField(), required=False)})},
        responses={201: s.VersionOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        files = _uploaded_files(request) if request.content_type.startswith("multipart/") else []
        try:
            data = _valid(s.VersionInput, request.data)
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

    @extend_schema(parameters=[FILTER_PARAM, *PAGE_PARAMS], responses=VERSION_PAGE)
    def get(self, request: Request) -> Response:
        qs = selectors.version_list(actor=request.user, filter_string=request.query_params.get("filter"))
        rows, nxt = paginate(qs, request.query_params, [("model__name", False), ("number", True)])
        return Response(_page(s.VersionOutput(rows, many=True).data, nxt))


class VersionDetailApi(APIView):
    """Get (by number, 'latest' or alias), edit or delete one version."""

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        return Response(s.VersionOutput(selectors.version_resolve(model=model, ref=ref)).data)

    @extend_schema(request=s.VersionUpdateInput, responses=s.VersionOutput)
    def patch(self, request: Request, name: str, ref: str) -> Response:
        data = _valid(s.VersionUpdateInput, request.data)
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
        data = _valid(s.StageInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = services.version_transition_stage(
            version=selectors.version_get(model=model, number=ref), actor=request.user, **data
        )
        return Response(_version_output(version))


class VersionDeprecateApi(APIView):
    """Deprecate a version, naming a successor version number of the same model if any."""

    @extend_schema(request=s.DeprecateInput, responses=s.VersionOutput)
    def post(self, request: Request, name: str, ref: str) -> Response:
        data = _valid(s.DeprecateInput, request.data)
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
        data = _valid(s.TagInput, request.data)
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


# --------------------------------------------------------------------------------------------- artifacts


class ArtifactListApi(APIView):
    """List a version's files, or add files with a multipart upload."""

    @extend_schema(responses=s.ArtifactOutput(many=True))
    def get(self, request: Request, name: str, ref: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        return Response({"files": s.ArtifactOutput(selectors.artifact_list(version=version), many=True).data})

    @extend_schema(request={"multipart/form-data": inline_serializer(
        "ArtifactUpload", {"file": serializers.ListField(child=serializers.FileField()),
                           "path": serializers.ListField(child=serializers.CharField(), required=False)})},
        responses={201: s.ArtifactOutput(many=True)})
    def post(self, request: Request, name: str, ref: str) -> Response:
        if not request.content_type.startswith("multipart/"):
            raise InvalidInput("Upload files as multipart/form-data 'file' parts (or PUT one raw file to its path).")
        files = _uploaded_files(request)
        try:
            if not files:
                raise InvalidInput("No 'file' part in the upload.")
            model = selectors.model_get(actor=request.user, name=name)
            version = selectors.version_get(model=model, number=ref)
        except BaseException:
            for _, upload in files:
                upload.discard()
            raise
        stored = []
        for i, (path, upload) in enumerate(files):
            try:
                stored.append(services.artifact_add(version=version, actor=request.user, path=path, upload=upload))
            except BaseException:
                for _, rest in files[i + 1:]:
                    rest.discard()
                raise
        return Response({"files": s.ArtifactOutput(stored, many=True).data}, status=status.HTTP_201_CREATED)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ArtifactFileApi(APIView):
    """Download one file (streamed, ETag = sha256, single Range), PUT one raw file to a path, or delete it."""

    parser_classes = [RawBodyParser]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              (206, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, name: str, ref: str, path: str) -> HttpResponse:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        artifact = selectors.artifact_get(version=version, path=path)
        etag = f'"{artifact.blob_id}"'
        common = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=0, must-revalidate"}
        if request.META.get("HTTP_IF_NONE_MATCH") == etag:
            response = HttpResponse(status=304)
            for k, v in common.items():
                response[k] = v
            return response
        size = artifact.size
        start, length, code = 0, size, 200
        range_header = request.META.get("HTTP_RANGE", "")
        if range_header and request.META.get("HTTP_IF_RANGE", etag) == etag:
            match = _RANGE.match(range_header.strip())
            first = last = None
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    first = int(match.group(1))
                    last = int(match.group(2)) if match.group(2) else size - 1
                else:
                    first, last = max(size - int(match.group(2)), 0), size - 1
            if first is None or first >= size or last < first:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{size}"
                return response
            last = min(last, size - 1)
            start, length, code = first, last - first + 1, 206
        response = StreamingHttpResponse(iter_range(blob_open(artifact.blob), start, length), status=code,
                                         content_type=content_type_for(artifact.format))
        response["Content-Length"] = str(length)
        if code == 206:
            response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        response["Content-Disposition"] = f"attachment; filename=\"{path.rsplit('/', 1)[-1]}\""
        for k, v in common.items():
            response[k] = v
        return response

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, responses={201: s.ArtifactOutput})
    def put(self, request: Request, name: str, ref: str, path: str) -> Response:
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type not in ("application/octet-stream", ""):
            from rest_framework.exceptions import UnsupportedMediaType

            raise UnsupportedMediaType(content_type, detail="Send the file's raw bytes as application/octet-stream.")
        _check_upload_length(request)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        upload = spool_stream(request._request)
        artifact = services.artifact_add(version=version, actor=request.user, path=path, upload=upload)
        return Response(s.ArtifactOutput(artifact).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, ref: str, path: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=ref)
        services.artifact_delete(version=version, actor=request.user, path=path)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ----------------------------------------------------------------------------------------------- aliases


class AliasListApi(APIView):
    """List a model's aliases."""

    @extend_schema(responses=s.AliasOutput(many=True))
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
        data = _valid(s.AliasInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        version = selectors.version_get(model=model, number=data["version"])
        return Response(s.AliasOutput(services.alias_set(model=model, alias=alias, version=version,
                                                         actor=request.user)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, alias: str) -> Response:
        services.alias_delete(model=selectors.model_get(actor=request.user, name=name), alias=alias,
                              actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------------------------- roles


class RoleListApi(APIView):
    """List who holds which role on a model, or grant one (owners only)."""

    @extend_schema(responses=s.RoleOutput(many=True))
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        grants = ModelRole.objects.filter(model=model).select_related("user", "group").order_by("-role", "pk")
        return Response({"owner": model.owner.username if model.owner else None,
                         "roles": s.RoleOutput(grants, many=True).data})

    @extend_schema(request=s.RoleInput, responses={201: s.RoleOutput})
    def post(self, request: Request, name: str) -> Response:
        data = _valid(s.RoleInput, request.data)
        model = selectors.model_get(actor=request.user, name=name)
        role = next(value for value, label in Role.choices if label == data["role"])
        user, group = _grantee(data.get("user"), data.get("group"))
        grant = access.role_grant(model=model, actor=request.user, role=role, user=user, group=group)
        return Response(s.RoleOutput(grant).data, status=status.HTTP_201_CREATED)


class RoleDetailApi(APIView):
    """Revoke a user's or group's role on a model."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str, kind: str, grantee: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        if kind not in ("users", "groups"):
            raise NotFound("Revoke under roles/users/<name> or roles/groups/<name>.")
        user, group = _grantee(grantee if kind == "users" else None, grantee if kind == "groups" else None)
        access.role_revoke(model=model, actor=request.user, user=user, group=group)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _grantee(username: str | None, group_name: str | None) -> tuple[Any, Group | None]:
    if username is not None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise InvalidInput(f"No active user {username!r}.")
        return user, None
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        raise InvalidInput(f"No group {group_name!r}.")
    return None, group


# ------------------------------------------------------------------------------------------------ tokens


class TokenListApi(APIView):
    """List your tokens or create one (its secret is returned once)."""

    @extend_schema(responses=s.TokenOutput(many=True))
    def get(self, request: Request) -> Response:
        tokens = AccessToken.objects.filter(user=request.user)
        return Response({"tokens": s.TokenOutput(tokens, many=True).data})

    @extend_schema(request=s.TokenInput, responses={201: s.TokenCreatedOutput})
    def post(self, request: Request) -> Response:
        data = _valid(s.TokenInput, request.data)
        days = data.get("expires_in_days")
        expires = timezone.now() + timedelta(days=days) if days else None
        token, raw = access.token_create(user=request.user, actor=request.user, name=data["name"],
                                           expires_at=expires, scopes=data.get("scopes"))
        token.token = raw
        return Response(s.TokenCreatedOutput(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    """Revoke one of your tokens."""

    @extend_schema(responses=s.TokenOutput)
    def delete(self, request: Request, prefix: str) -> Response:
        token = AccessToken.objects.filter(user=request.user, prefix=prefix).first()
        if token is None:
            raise NotFound(f"You have no token {prefix!r}.")
        return Response(s.TokenOutput(access.token_revoke(token=token, actor=request.user)).data)
