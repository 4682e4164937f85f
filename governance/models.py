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


GATE_KEYS = ("artifact_scan", "signature", "model_card", "metrics")
GATE_LABELS = {"artifact_scan": "Artifacts scanned clean", "signature": "Artifact signature verified",
               "model_card": "Model card complete", "metrics": "Metrics no worse than the current holder"}


def all_gate_keys() -> list[str]:
    """Every gate a protected target can require (the default: all of them)."""
    return list(GATE_KEYS)


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
    # The gates that must pass (failed or not available blocks); the others are advisory: shown, never blocking.
    required_gates = models.JSONField(default=all_gate_keys, blank=True)
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
    # What an approval saw (governance/evidence.py); null on approvals given before evidence was recorded.
    evidence = models.JSONField(null=True, blank=True)
    # Set when that evidence changed before the request executed: the approval is kept, no longer counted, and its
    # reviewer may approve again on the current evidence.
    stale_at = models.DateTimeField(null=True, blank=True)
    stale_reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "reviewer"], condition=Q(stale_at__isnull=True),
                                               name="uniq_live_decision_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.reviewer_username} {self.decision}"

    @property
    def stale(self) -> bool:
        return self.stale_at is not None

    @property
    def stale_reason(self) -> str:
        return "; ".join(self.stale_reasons or [])


class CardApprovers(models.TextChoices):
    """Who may approve or return a model's cards: its reviewers, the compliance group, or either."""

    REVIEWERS = "reviewers", "Reviewers of the model"
    COMPLIANCE = "compliance", "The compliance group"
    BOTH = "both", "Reviewers or the compliance group"


class ReviewPolicy(models.Model):
    """A model's review settings: who approves its cards and how complete a card must be to be sent for review."""

    model = models.OneToOneField("registry.RegisteredModel", on_delete=models.CASCADE, related_name="review_policy")
    card_approvers = models.CharField(max_length=16, choices=CardApprovers.choices, default=CardApprovers.BOTH)
    card_min_completeness = models.PositiveSmallIntegerField(default=100)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(card_min_completeness__gte=1) & Q(card_min_completeness__lte=100),
                                   name="review_policy_threshold_percent"),
        ]

    def __str__(self) -> str:
        return f"review policy of model {self.model_id}"


class CardState(models.TextChoices):
    """Where a model card stands: draft → in review → approved → archived (read-only, still exportable)."""

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    ARCHIVED = "archived", "Archived"


class ModelCard(models.Model):
    """The model card of one version: JSON content validated by the repository's schema, and its state."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    version = models.OneToOneField("registry.ModelVersion", on_delete=models.CASCADE, related_name="model_card")
    state = models.CharField(max_length=16, choices=CardState.choices, default=CardState.DRAFT, db_index=True)
    content = models.JSONField(default=dict)
    revision = models.PositiveIntegerField(default=1)
    completeness = models.PositiveSmallIntegerField(default=0)
    missing = models.JSONField(default=list, blank=True)
    sha256 = models.CharField(max_length=64)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "version_id"]
        constraints = [
            models.CheckConstraint(condition=Q(completeness__lte=100), name="model_card_completeness_percent"),
        ]

    def __str__(self) -> str:
        return f"model card of version {self.version_id}"


class ModelCardRevision(models.Model):
    """One saved state of a card (content, state, hash, who and why): the card's per-version history."""

    card = models.ForeignKey(ModelCard, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    action = models.CharField(max_length=32)
    state = models.CharField(max_length=16, choices=CardState.choices)
    content = models.JSONField(default=dict)
    sha256 = models.CharField(max_length=64)
    completeness = models.PositiveSmallIntegerField(default=0)
    note = models.TextField(blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["card_id", "-revision"]
        constraints = [models.UniqueConstraint(fields=["card", "revision"], name="uniq_card_revision")]

    def __str__(self) -> str:
        return f"card {self.card_id} r{self.revision}"


class SubjectManifest(models.Model):
    """The data subjects a dataset version contains, as keyed hashes only (never a raw identifier)."""

    node = models.OneToOneField("registry.LineageNode", on_delete=models.CASCADE, related_name="subject_manifest")
    key_id = models.CharField(max_length=32)
    entries = models.PositiveIntegerField(default=0)
    suppressed_hits = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"subject manifest of node {self.node_id}"


class SubjectHash(models.Model):
    """One keyed hash (HMAC-SHA256) of a data subject in a manifest."""

    manifest = models.ForeignKey(SubjectManifest, on_delete=models.CASCADE, related_name="hashes")
    digest = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["manifest", "digest"], name="uniq_manifest_subject")]

    def __str__(self) -> str:
        return self.digest[:12]


class ErasureState(models.TextChoices):
    """An erasure request is open until every obligation is resolved, then closed."""

    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ErasureRequest(models.Model):
    """A GDPR Art. 17 request: the subject as a keyed hash, dates, deadline, handler; no personal data."""

    subject_hash = models.CharField(max_length=64, db_index=True)
    key_id = models.CharField(max_length=32)
    received_on = models.DateField()
    deadline = models.DateField()
    extended = models.BooleanField(default=False)
    extension_reason = models.TextField(blank=True, default="")
    extension_notified_on = models.DateField(null=True, blank=True)
    handler = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=ErasureState.choices, default=ErasureState.OPEN, db_index=True)
    suppressed_reingestions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deadline", "pk"]

    def __str__(self) -> str:
        return f"erasure request #{self.pk}"


class ObligationStatus(models.TextChoices):
    """What was done about one affected item."""

    PENDING = "pending", "Pending"
    DATASET_PURGED = "dataset_purged", "Dataset purged"
    MODEL_RETRAINED = "model_retrained", "Model retrained"
    MODEL_DEPRECATED = "model_deprecated", "Model deprecated"
    EXEMPT = "exempt", "Exemption (Art. 17(3))"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class ExemptionGround(models.TextChoices):
    """The grounds of GDPR Art. 17(3) on which erasure may be refused."""

    EXPRESSION = "a", "17(3)(a) freedom of expression and information"
    LEGAL_OBLIGATION = "b", "17(3)(b) legal obligation or public task"
    PUBLIC_HEALTH = "c", "17(3)(c) public interest in public health"
    ARCHIVING = "d", "17(3)(d) archiving, research or statistics"
    LEGAL_CLAIMS = "e", "17(3)(e) legal claims"


class ErasureObligation(models.Model):
    """One affected dataset version, model version or deployment of a request, and how it was resolved."""

    request = models.ForeignKey(ErasureRequest, on_delete=models.CASCADE, related_name="obligations")
    node = models.ForeignKey("registry.LineageNode", null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=24)
    label = models.CharField(max_length=512)
    status = models.CharField(max_length=24, choices=ObligationStatus.choices, default=ObligationStatus.PENDING)
    replacement_node = models.ForeignKey("registry.LineageNode", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    replacement_version = models.ForeignKey("registry.ModelVersion", null=True, blank=True,
                                            on_delete=models.SET_NULL, related_name="+")
    exemption_ground = models.CharField(max_length=1, choices=ExemptionGround.choices, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Evidence of a purge of a dataset's stored files: what was deleted (paths, digests, bytes) and what was kept.
    files_purged = models.JSONField(default=dict, blank=True)
    files_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request_id", "kind", "label", "pk"]
        constraints = [models.UniqueConstraint(fields=["request", "node"], name="uniq_obligation_node")]

    def __str__(self) -> str:
        return f"{self.kind} {self.label}: {self.status}"


class SuppressedSubject(models.Model):
    """A keyed hash of an erased subject: later dataset manifests are checked against it for re-ingestion."""

    subject_hash = models.CharField(max_length=64, unique=True)
    request = models.ForeignKey(ErasureRequest, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"suppressed {self.subject_hash[:12]}"


class ExportState(models.TextChoices):
    """Where a background export stands."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CardExportJob(models.Model):
    """A background export of every card of a model as one PDF, with its progress."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=ExportState.choices, default=ExportState.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=512, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"card export #{self.pk}"

    @property
    def progress(self) -> int:
        return 100 if self.state == ExportState.DONE else int(100 * self.done / self.total) if self.total else 0
