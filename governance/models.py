"""Governance data: the hash-chained audit trail, signed checkpoints, protected targets and promotion requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened (never updated, never deleted)."""

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    # Plain columns, not foreign keys: deleting a user or a model must never touch (or cascade into) the trail.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True, default="", db_index=True)
    token_prefix = models.CharField(max_length=16, blank=True, default="")
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_label = models.CharField(max_length=512, blank=True, default="")
    model_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    model_name = models.CharField(max_length=256, blank=True, default="", db_index=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    client_ip = models.CharField(max_length=64, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["model_id", "seq"], name="audit_model_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain head at a sequence number; a rewritten database cannot re-sign it."""

    seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=64)
    signature = models.TextField()

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


class TargetKind(models.TextChoices):
    """What a protected target names: a lifecycle stage or an alias."""

    STAGE = "stage", "Stage"
    ALIAS = "alias", "Alias"


class ProtectedTarget(models.Model):
    """A stage or alias of a model that versions reach only through an approved promotion request."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="protected_targets")
    kind = models.CharField(max_length=8, choices=TargetKind.choices)
    name = models.CharField(max_length=256)
    approvals_required = models.PositiveSmallIntegerField(default=2)
    block_on_unavailable = models.BooleanField(default=False)
    allow_emergency_rollback = models.BooleanField(default=False)
    metric_rules = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["model", "kind", "name"], name="uniq_protected_target"),
            models.CheckConstraint(condition=Q(approvals_required__gte=1), name="protected_target_quorum_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def label(self) -> str:
        return f"@{self.name}" if self.kind == TargetKind.ALIAS else self.name


class PromotionState(models.TextChoices):
    """Where a promotion request stands: open → approved → executed, or rejected / cancelled / expired."""

    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    EXECUTED = "executed", "Executed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


ACTIVE_STATES = (PromotionState.OPEN, PromotionState.APPROVED)


class PromotionRequest(models.Model):
    """A request to move a version onto a protected stage or alias, decided by a quorum of reviewers."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=TargetKind.choices)
    target = models.CharField(max_length=256)
    justification = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=PromotionState.choices, default=PromotionState.OPEN,
                             db_index=True)
    approvals_required = models.PositiveSmallIntegerField()
    is_rollback = models.BooleanField(default=False)
    holder_version_number = models.PositiveIntegerField(null=True, blank=True)
    gate_results = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["state", "created_at"], name="promotion_state_created")]

    def __str__(self) -> str:
        return f"promotion #{self.pk}"

    @property
    def target_label(self) -> str:
        return f"@{self.target}" if self.kind == TargetKind.ALIAS else self.target


class Decision(models.TextChoices):
    """A reviewer's verdict on a promotion request."""

    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class PromotionDecision(models.Model):
    """One reviewer's single approval or rejection of a request, with a comment."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewer_username = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "reviewer"], name="uniq_decision_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.reviewer_username} {self.decision}"
