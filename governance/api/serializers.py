"""Governance API shapes: input serializers validate, output serializers render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance import evidence, exports
from governance.models import (
    GATE_KEYS,
    AuditEvent,
    CardApprovers,
    PromotionDecision,
    PromotionRequest,
    ProtectedTarget,
    TargetKind,
    all_gate_keys,
)


class PromotionCreateInput(serializers.Serializer):
    model = serializers.CharField(max_length=256)
    version = serializers.IntegerField(min_value=1)
    target = serializers.CharField(max_length=256)
    kind = serializers.ChoiceField(choices=TargetKind.choices, required=False, allow_blank=True)
    justification = serializers.CharField(max_length=20_000, allow_blank=True, trim_whitespace=True)


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


class ProtectedTargetInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TargetKind.choices, required=False, allow_blank=True)
    name = serializers.CharField(max_length=256)
    approvals_required = serializers.IntegerField(min_value=1, max_value=10, default=2)
    required_gates = serializers.ListField(child=serializers.ChoiceField(choices=list(GATE_KEYS)), required=False,
                                           default=all_gate_keys, max_length=len(GATE_KEYS))
    allow_emergency_rollback = serializers.BooleanField(default=False)
    metric_rules = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class ReviewPolicyInput(serializers.Serializer):
    card_approvers = serializers.ChoiceField(choices=CardApprovers.choices)
    card_min_completeness = serializers.IntegerField(min_value=1, max_value=100)


class ReviewPolicyOutput(serializers.Serializer):
    card_approvers = serializers.CharField()
    card_min_completeness = serializers.IntegerField()


class RollbackInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TargetKind.choices, required=False, allow_blank=True)
    target = serializers.CharField(max_length=256)
    reason = serializers.CharField(max_length=20_000, allow_blank=True)
    emergency = serializers.BooleanField(default=False)


class DecisionOutput(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer_username")
    stale = serializers.BooleanField(read_only=True, help_text="The evidence this approval saw has changed since: it "
                                                              "is kept, but no longer counts towards the quorum.")
    stale_reason = serializers.CharField(read_only=True, help_text="What changed (empty while the approval holds).")

    class Meta:
        model = PromotionDecision
        fields = ["reviewer", "decision", "comment", "created_at", "stale", "stale_at", "stale_reason"]


class PromotionOutput(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.number")
    requested_by = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()
    stale = serializers.SerializerMethodField()
    stale_reasons = serializers.SerializerMethodField()
    decisions = DecisionOutput(many=True, read_only=True)

    class Meta:
        model = PromotionRequest
        fields = ["id", "model", "version", "kind", "target", "justification", "requested_by", "state",
                  "approvals_required", "approvals", "stale", "stale_reasons", "is_rollback",
                  "holder_version_number", "gate_results", "decisions", "created_at", "closed_at", "executed_at"]

    def get_requested_by(self, obj: PromotionRequest) -> str | None:
        return obj.requested_by.get_username() if obj.requested_by else None

    def get_approvals(self, obj: PromotionRequest) -> int:
        """Approvals that count: not stale."""
        return sum(1 for d in obj.decisions.all() if d.decision == "approve" and d.stale_at is None)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_stale(self, obj: PromotionRequest) -> bool:
        """True while the request is back in review because approvals went stale and the quorum is not met again."""
        return evidence.staleness(obj)[0]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), help_text=(
        "What changed since the stale approvals, one sentence each (empty unless `stale`).")))
    def get_stale_reasons(self, obj: PromotionRequest) -> list[str]:
        """What changed since the stale approvals (empty unless `stale`)."""
        return evidence.staleness(obj)[1]


class ProtectedTargetOutput(serializers.ModelSerializer):
    class Meta:
        model = ProtectedTarget
        fields = ["kind", "name", "approvals_required", "required_gates", "allow_emergency_rollback",
                  "metric_rules", "created_at", "updated_at"]


class AuditEventOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username")

    class Meta:
        model = AuditEvent
        fields = ["seq", "created_at", "actor", "token_prefix", "action", "target_type", "target_id", "target_label",
                  "model_name", "version_number", "data", "request_id", "client_ip", "prev_hash", "hash"]


def history_output(state: Any) -> dict[str, Any]:
    """Render a HistoryState."""
    return {
        "at": state.at.isoformat() if state.at else None,
        "aliases": state.aliases,
        "stages": state.stages,
        "events": AuditEventOutput(state.events, many=True).data,
    }


class AuditExportRowOutput(serializers.ModelSerializer):
    """One event of the JSON export (`export=json`): the exported columns, as the CSV has them."""

    class Meta:
        model = AuditEvent
        fields = list(exports.COLUMNS)
