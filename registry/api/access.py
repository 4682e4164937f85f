"""Native API for access: who holds which role on a model (grant, revoke) and your personal API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import access, selectors
from registry.api import serializers as s
from registry.api.common import valid
from registry.errors import InvalidInput, NotFound
from registry.models import AccessToken, ModelRole, Role


class RoleListApi(APIView):
    """List who holds which role on a model, or grant one (owners only)."""

    @extend_schema(operation_id="models_roles_list", responses=s.RoleListOutput)
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(actor=request.user, name=name)
        grants = ModelRole.objects.filter(model=model).select_related("user", "group").order_by("-role", "pk")
        return Response({"owner": model.owner.username if model.owner else None,
                         "roles": s.RoleOutput(grants, many=True).data})

    @extend_schema(request=s.RoleInput, responses={201: s.RoleOutput})
    def post(self, request: Request, name: str) -> Response:
        data = valid(s.RoleInput, request.data)
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


# ----------------------------------------------------------------------------------------------- tokens


class TokenListApi(APIView):
    """List your tokens or create one (its secret is returned once)."""

    @extend_schema(operation_id="tokens_list", responses=s.TokenListOutput)
    def get(self, request: Request) -> Response:
        tokens = AccessToken.objects.filter(user=request.user)
        return Response({"tokens": s.TokenOutput(tokens, many=True).data})

    @extend_schema(request=s.TokenInput, responses={201: s.TokenCreatedOutput})
    def post(self, request: Request) -> Response:
        data = valid(s.TokenInput, request.data)
        days = data.get("expires_in_days")
        expires = timezone.now() + timedelta(days=days) if days else None
        token, raw = access.token_create(user=request.user, actor=request.user, name=data["name"],
                                           expires_at=expires, scopes=data.get("scopes"))
        token.token = raw
        return Response(s.TokenCreatedOutput(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    """Revoke one of your tokens."""

    @extend_schema(responses={200: s.TokenOutput})
    def delete(self, request: Request, prefix: str) -> Response:
        token = AccessToken.objects.filter(user=request.user, prefix=prefix).first()
        if token is None:
            raise NotFound(f"You have no token {prefix!r}.")
        return Response(s.TokenOutput(access.token_revoke(token=token, actor=request.user)).data)
