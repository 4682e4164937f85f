"""Model card API: read or export a version's card (?format=json|mct|md|pdf), write it, move it through states."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.cards import exports, selectors, services
from registry import selectors as registry_selectors
from registry.errors import InvalidInput


class IgnoreFormatParam(DefaultContentNegotiation):
    """Let `?format=` name the card's export format instead of a DRF renderer (JSON is the only renderer)."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        """Always answer with the first renderer; the view picks the export format itself."""
        renderer = renderers[0]
        return renderer, renderer.media_type


def _version(request: Request, name: str, ref: str) -> Any:
    model = registry_selectors.model_get(actor=request.user, name=name)
    return registry_selectors.version_resolve(model=model, ref=ref)


class CardWriteInput(serializers.Serializer):
    """Either a whole card (`content`) or one section (`section` and `values`), with an optional change note."""

    content = serializers.JSONField(required=False)
    section = serializers.CharField(required=False, max_length=64)
    values = serializers.JSONField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class CardTransitionInput(serializers.Serializer):
    """A comment for approve/return, or a reason for reopen/archive."""

    comment = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")


CARD_OUTPUT = inline_serializer("ModelCard", {
    "model": serializers.CharField(), "version": serializers.IntegerField(), "state": serializers.CharField(),
    "revision": serializers.IntegerField(), "completeness": serializers.IntegerField(),
    "missing": serializers.ListField(child=serializers.CharField()), "sha256": serializers.CharField(),
    "updated_at": serializers.DateTimeField(), "content": serializers.JSONField()})
CARD_HISTORY = inline_serializer("ModelCardHistory", {"results": serializers.ListField(
    child=serializers.DictField())})


class CardApi(APIView):
    """GET a card (JSON, or an export with ?format=); PUT a section or the whole draft (created when missing)."""

    content_negotiation_class = IgnoreFormatParam

    @extend_schema(operation_id="model_card_get", parameters=[OpenApiParameter("format", str,
                   enum=list(exports.FORMATS), description="json (default), mct, md or pdf")],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "text/markdown"): OpenApiTypes.STR,
                              (200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, name: str, ref: str) -> Any:
        fmt = request.query_params.get("format", "json")
        if fmt not in exports.FORMATS:
            raise InvalidInput(f"Unknown format {fmt!r}; use one of {', '.join(exports.FORMATS)}.")
        card = selectors.card_get(version=_version(request, name, ref))
        if fmt == "json":
            return Response(exports.card_json(card))
        return exports.export_response(card, fmt, request.user)

    @extend_schema(operation_id="model_card_put", request=CardWriteInput,
                   responses={200: CARD_OUTPUT, 201: CARD_OUTPUT})
    def put(self, request: Request, name: str, ref: str) -> Response:
        data = CardWriteInput(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        version = _version(request, name, ref)
        card = selectors.card_for_version(version=version)
        created = card is None
        if card is None:
            card = services.card_create(version=version, actor=request.user)
        if "content" in body:
            if not isinstance(body["content"], dict):
                raise InvalidInput("content must be a JSON object shaped by the model card schema.")
            card = services.card_replace(card=card, actor=request.user, content=body["content"], note=body["note"])
        elif "section" in body:
            values = body.get("values")
            if not isinstance(values, dict):
                raise InvalidInput("values must be a JSON object of the section's fields.")
            card = services.card_update(card=card, actor=request.user, section=body["section"], values=values,
                                        note=body["note"])
        elif not created:
            raise InvalidInput("Send `content` (the whole card) or `section` with `values`.")
        return Response(exports.card_json(card), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CardTransitionApi(APIView):
    """Move a card: submit, approve, return, reopen, archive, refresh."""

    @extend_schema(operation_id="model_card_transition", request=CardTransitionInput, responses=CARD_OUTPUT)
    def post(self, request: Request, name: str, ref: str, action: str) -> Response:
        data = CardTransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        comment = data.validated_data["comment"]
        card = selectors.card_get(version=_version(request, name, ref))
        actions = {
            "submit": lambda: services.card_submit(card=card, actor=request.user),
            "approve": lambda: services.card_approve(card=card, actor=request.user, comment=comment),
            "return": lambda: services.card_return(card=card, actor=request.user, comment=comment),
            "reopen": lambda: services.card_reopen(card=card, actor=request.user, reason=comment),
            "archive": lambda: services.card_archive(card=card, actor=request.user, reason=comment),
            "refresh": lambda: services.card_refresh(card=card, actor=request.user),
        }
        if action not in actions:
            raise InvalidInput(f"Unknown card action {action!r}; use one of {', '.join(actions)}.")
        return Response(exports.card_json(actions[action]()))


class CardHistoryApi(APIView):
    """The card's revisions, newest first (content hashes, who, what)."""

    @extend_schema(operation_id="model_card_history", responses=CARD_HISTORY)
    def get(self, request: Request, name: str, ref: str) -> Response:
        card = selectors.card_get(version=_version(request, name, ref))
        return Response({"results": [
            {"revision": r.revision, "action": r.action, "state": r.state, "sha256": r.sha256,
             "completeness": r.completeness, "note": r.note, "actor": r.actor_username,
             "created_at": r.created_at.isoformat()} for r in selectors.card_history(card=card)]})
