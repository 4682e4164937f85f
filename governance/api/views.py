"""Governance REST API: promotion requests and decisions, protected targets, history, rollback, audit."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import audit, exports, permissions, selectors, services
from governance.api import serializers as s
from governance.policy.api import PolicyVersionOutput
from registry import selectors as registry_selectors
from registry.errors import InvalidInput
from registry.pagination import paginate


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def _promotion(request: Request, pk: int) -> Any:
    return selectors.promotion_get(actor=request.user, pk=pk)


def _output(request: Request, promotion: Any) -> dict[str, Any]:
    return s.PromotionOutput(selectors.promotion_get(actor=request.user, pk=promotion.pk)).data


PROMOTION_PAGE = inline_serializer("PromotionPage", {"results": s.PromotionOutput(many=True),
                                                     "next_cursor": serializers.CharField(allow_null=True)})


class PromotionListCreateApi(APIView):
    """List promotion requests (by state, model, or waiting for me) or open one."""

    @extend_schema(operation_id="promotions_list",
                   parameters=[OpenApiParameter("state", str), OpenApiParameter("model", str),
                               OpenApiParameter("waiting_for_me", bool)], responses=PROMOTION_PAGE)
    def get(self, request: Request) -> Response:
        params = request.query_params
        if params.get("waiting_for_me") in ("1", "true", "yes"):
            qs = selectors.promotion_inbox(actor=request.user)
        else:
            model = registry_selectors.model_get(actor=request.user, name=params["model"]) if params.get("model") \
                else None
            qs = selectors.promotion_list(actor=request.user, state=params.get("state") or None, model=model)
        rows, nxt = paginate(qs, params, [("id", True)])
        return Response({"results": s.PromotionOutput(rows, many=True).data, "next_cursor": nxt})

    @extend_schema(request=s.PromotionCreateInput, responses={201: s.PromotionOutput})
    def post(self, request: Request) -> Response:
        data = _valid(s.PromotionCreateInput, request.data)
        model = registry_selectors.model_get(actor=request.user, name=data["model"])
        version = registry_selectors.version_get(model=model, number=data["version"])
        promotion = services.promotion_request_create(version=version, actor=request.user, kind=data.get("kind"),
                                                      target=data["target"], justification=data["justification"])
        return Response(_output(request, promotion), status=status.HTTP_201_CREATED)


class PromotionDetailApi(APIView):
    """One promotion request with its decisions and gate results."""

    @extend_schema(responses=s.PromotionOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.PromotionOutput(_promotion(request, pk)).data)


class PromotionApproveApi(APIView):
    """Approve as a reviewer (the approval reaching the quorum executes the move)."""

    @extend_schema(request=s.CommentInput, responses=s.PromotionOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.CommentInput, request.data)
        promotion = services.promotion_approve(request=_promotion(request, pk), actor=request.user,
                                               comment=data["comment"])
        return Response(_output(request, promotion))


class PromotionRejectApi(APIView):
    """Reject as a reviewer, with a comment; the request closes."""

    @extend_schema(request=s.CommentInput, responses=s.PromotionOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.CommentInput, request.data)
        promotion = services.promotion_reject(request=_promotion(request, pk), actor=request.user,
                                              comment=data["comment"])
        return Response(_output(request, promotion))


class PromotionCancelApi(APIView):
    """Withdraw a request (the requester or a maintainer)."""

    @extend_schema(request=s.CommentInput, responses=s.PromotionOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.CommentInput, request.data)
        promotion = services.promotion_cancel(request=_promotion(request, pk), actor=request.user,
                                              comment=data["comment"])
        return Response(_output(request, promotion))


class PromotionExecuteApi(APIView):
    """Retry an approved request that a blocking gate held back."""

    @extend_schema(request=None, responses=s.PromotionOutput)
    def post(self, request: Request, pk: int) -> Response:
        promotion = services.promotion_execute(request=_promotion(request, pk), actor=request.user)
        return Response(_output(request, promotion))


class ProtectedTargetListApi(APIView):
    """List a model's protected targets, or protect one / change its policy (maintainers)."""

    @extend_schema(responses=s.ProtectedTargetOutput(many=True))
    def get(self, request: Request, name: str) -> Response:
        model = registry_selectors.model_get(actor=request.user, name=name)
        return Response(s.ProtectedTargetOutput(selectors.protected_target_list(model=model), many=True).data)

    @extend_schema(request=s.ProtectedTargetInput, responses={201: s.ProtectedTargetOutput,
                                                              202: s.ProtectedTargetOutput})
    def post(self, request: Request, name: str) -> Response:
        data = _valid(s.ProtectedTargetInput, request.data)
        model = registry_selectors.model_get(actor=request.user, name=name)
        target = services.protected_target_set(model=model, actor=request.user, **data)
        # A change of an existing protection is a proposed policy version: accepted, in force once approved.
        pending = getattr(target, "pending_policy", None) is not None
        return Response(s.ProtectedTargetOutput(target).data,
                        status=status.HTTP_202_ACCEPTED if pending else status.HTTP_201_CREATED)


class ReviewPolicyApi(APIView):
    """Read a model's card review settings, or set them (maintainers): who approves cards, and how complete a card
    must be to be sent for review."""

    @extend_schema(responses=s.ReviewPolicyOutput)
    def get(self, request: Request, name: str) -> Response:
        model = registry_selectors.model_get(actor=request.user, name=name)
        return Response(s.ReviewPolicyOutput(permissions.review_policy(model)).data)

    @extend_schema(request=s.ReviewPolicyInput, responses=s.ReviewPolicyOutput)
    def put(self, request: Request, name: str) -> Response:
        data = _valid(s.ReviewPolicyInput, request.data)
        model = registry_selectors.model_get(actor=request.user, name=name)
        return Response(s.ReviewPolicyOutput(services.review_policy_set(model=model, actor=request.user,
                                                                         **data)).data)


class ProtectedTargetDetailApi(APIView):
    """Propose lifting the protection of a stage or alias (maintainers); another maintainer approves it."""

    @extend_schema(responses={202: PolicyVersionOutput})
    def delete(self, request: Request, name: str, kind: str, target: str) -> Response:
        model = registry_selectors.model_get(actor=request.user, name=name)
        version = services.protected_target_delete(model=model, actor=request.user, kind=kind, name=target)
        return Response(PolicyVersionOutput(version).data, status=status.HTTP_202_ACCEPTED)


class ModelHistoryApi(APIView):
    """What held each alias and stage of a model at a moment (`at`, ISO time; default now), from the audit trail."""

    @extend_schema(parameters=[OpenApiParameter("at", str)], responses=inline_serializer("History", {
        "at": serializers.CharField(allow_null=True), "aliases": serializers.DictField(),
        "stages": serializers.DictField(), "events": s.AuditEventOutput(many=True)}))
    def get(self, request: Request, name: str) -> Response:
        model = registry_selectors.model_get(actor=request.user, name=name)
        at = selectors.parse_moment(request.query_params.get("at"), "at")
        return Response(s.history_output(selectors.model_history(model=model, at=at)))


class ModelRollbackApi(APIView):
    """Move a target back to its previous holder: opens a request, or executes an allowed emergency rollback."""

    @extend_schema(request=s.RollbackInput, responses={201: s.PromotionOutput})
    def post(self, request: Request, name: str) -> Response:
        data = _valid(s.RollbackInput, request.data)
        model = registry_selectors.model_get(actor=request.user, name=name)
        promotion = services.promotion_rollback(model=model, actor=request.user, kind=data.get("kind"),
                                                target=data["target"], reason=data["reason"],
                                                emergency=data["emergency"])
        return Response(_output(request, promotion), status=status.HTTP_201_CREATED)


AUDIT_PARAMS = [OpenApiParameter(n, str) for n in ("model", "actor", "action", "since", "until")] + [
    OpenApiParameter("export", str, enum=["csv", "json"], description="Download the whole filtered range")]


def audit_queryset(request: Request) -> Any:
    """The audit events the user may read, filtered by the query string (shared with the page)."""
    params = request.query_params if hasattr(request, "query_params") else request.GET
    return selectors.audit_list(
        actor=request.user, model=params.get("model") or None, username=params.get("actor") or None,
        action=params.get("action") or None, since=selectors.parse_moment(params.get("since"), "since"),
        until=selectors.parse_moment(params.get("until"), "until"),
    )


AUDIT_PAGE = inline_serializer("AuditPage", {"results": s.AuditEventOutput(many=True),
                                             "next_cursor": serializers.CharField(allow_null=True)})


class AuditListApi(APIView):
    """Audit events, newest first, filtered by model, actor, action and time; `export=csv|json` downloads them."""

    @extend_schema(parameters=AUDIT_PARAMS, responses={
        (200, "application/json"): PolymorphicProxySerializer(
            component_name="AuditPageOrExport", resource_type_field_name=None, many=False,
            serializers=[AUDIT_PAGE, s.AuditExportRowOutput(many=True)],
            help_text="A page of events; with export=json, the whole filtered range as one array."),
        (200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request) -> Any:
        qs = audit_queryset(request)
        kind = request.query_params.get("export")
        if kind:
            if kind not in ("csv", "json"):
                raise InvalidInput("export must be 'csv' or 'json'.")
            return exports.export_response(qs, kind)
        rows, nxt = paginate(qs, request.query_params, [("seq", True)])
        return Response({"results": s.AuditEventOutput(rows, many=True).data, "next_cursor": nxt})


class AuditVerifyApi(APIView):
    """Walk the whole chain and its signed checkpoints now and return the verdict."""

    @extend_schema(responses=inline_serializer("AuditVerdict", {
        "ok": serializers.BooleanField(), "events": serializers.IntegerField(),
        "head_seq": serializers.IntegerField(), "head_hash": serializers.CharField(),
        "checkpoints": serializers.IntegerField(), "first_bad_seq": serializers.IntegerField(allow_null=True),
        "problems": serializers.ListField(child=serializers.CharField()), "summary": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        verdict = audit.verify()
        return Response({"ok": verdict.ok, "events": verdict.events, "head_seq": verdict.head_seq,
                         "head_hash": verdict.head_hash, "checkpoints": verdict.checkpoints,
                         "first_bad_seq": verdict.first_bad_seq, "problems": verdict.problems,
                         "summary": verdict.summary})
