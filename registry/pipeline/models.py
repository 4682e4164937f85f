"""Pipeline data: durable background jobs and the static scan verdict of each artifact's content."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from registry.pipeline import kinds


class JobKind(models.TextChoices):
    """The registry's own job kinds; other apps register theirs with `jobs.register_handler` at start-up."""

    SCAN = "scan", "Scan artifact"
    CONVERT = "convert", "Convert to ONNX"
    SIGN = "sign", "Sign version"
    VERIFY = "verify", "Verify signature"
    WEBHOOK = "webhook", "Deliver webhook"


class JobState(models.TextChoices):
    """Where a job is in its life."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """One background job: a durable row the broker message only points at, so nothing is lost with a worker."""

    kind = models.CharField(max_length=16)  # a registered kind (registry.pipeline.kinds), checked by job_enqueue
    key = models.CharField(max_length=200, unique=True)  # idempotency key: the same work is queued once
    version = models.ForeignKey("registry.ModelVersion", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="jobs")
    artifact = models.ForeignKey("registry.Artifact", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="jobs")
    target_label = models.CharField(max_length=500, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "dispatched_at"], name="job_state_dispatched")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    def get_kind_display(self) -> str:
        """Return the label the app that registered this job's kind gave it."""
        return kinds.label(self.kind)

    @property
    def active(self) -> bool:
        return self.state in (JobState.QUEUED, JobState.RUNNING)


class ScanVerdict(models.TextChoices):
    """The outcome of a static scan; everything but safe and not_pickle is quarantined."""

    SAFE = "safe", "Safe"
    NOT_PICKLE = "not_pickle", "No pickle content"
    UNSAFE = "unsafe", "Unsafe"
    ERROR = "error", "Scan error"


class ArtifactScan(models.Model):
    """The static scan of one artifact's content (one row per artifact and blob: a replaced file is rescanned)."""

    artifact = models.ForeignKey("registry.Artifact", on_delete=models.CASCADE, related_name="scans")
    blob = models.ForeignKey("registry.Blob", on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=16, choices=ScanVerdict.choices)
    quarantined = models.BooleanField()
    globals_found = models.JSONField(default=list, blank=True)
    offending = models.JSONField(default=list, blank=True)
    members = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True, default="")
    scanner = models.CharField(max_length=64)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["artifact_id", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["artifact", "blob"], name="uniq_artifact_scan_blob")]

    def __str__(self) -> str:
        return f"scan of artifact {self.artifact_id}: {self.verdict}"


class ScannerRescan(models.Model):
    """The background rescan of every stored scan made by an older scanner version, one per scanner version."""

    scanner = models.CharField(max_length=64, unique=True)
    total = models.PositiveIntegerField(default=0)
    newly_quarantined = models.PositiveIntegerField(default=0)
    finished = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"rescan with {self.scanner}"


class ReleaseState(models.TextChoices):
    """Where a four-eyes release of a quarantined file is: asked for, in force, or withdrawn."""

    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REVOKED = "revoked", "Revoked"


class ArtifactRelease(models.Model):
    """A four-eyes release of one quarantined content (digest) of a model's files: the exact globals accepted, why,
    who asked (a maintainer) and who approved (an administrator, never the same person); revocable."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="artifact_releases")
    blob = models.ForeignKey("registry.Blob", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")  # where it was asked for, for the record
    path = models.CharField(max_length=1024)
    accepted_globals = models.JSONField(default=list, blank=True)
    reason = models.TextField()
    state = models.CharField(max_length=16, choices=ReleaseState.choices, default=ReleaseState.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["model", "blob"], condition=models.Q(state__in=["requested", "approved"]),
                                    name="uniq_open_artifact_release"),
            models.CheckConstraint(condition=~models.Q(approved_by=models.F("requested_by")),
                                   name="artifact_release_four_eyes"),
        ]

    def __str__(self) -> str:
        return f"release of {self.blob_id[:12]} in model {self.model_id} ({self.state})"


class VersionSignature(models.Model):
    """An OpenSSF model-signing bundle over a version's whole file tree (stored as a blob, outside the tree)."""

    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="signatures")
    bundle = models.ForeignKey("registry.Blob", on_delete=models.PROTECT, related_name="+")
    manifest = models.JSONField(default=dict)  # path -> sha256 of the tree that was signed
    key_fingerprint = models.CharField(max_length=64)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "-signed_at", "-pk"]

    def __str__(self) -> str:
        return f"signature of version {self.version_id} by key {self.key_fingerprint[:12]}"


class SignatureVerification(models.Model):
    """One verification of a version's signature against its current tree: passed, or which files differ."""

    signature = models.ForeignKey(VersionSignature, on_delete=models.CASCADE, related_name="verifications")
    ok = models.BooleanField()
    changed = models.JSONField(default=list, blank=True)
    added = models.JSONField(default=list, blank=True)
    removed = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True, default="")
    verified_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["signature_id", "-verified_at", "-pk"]

    def __str__(self) -> str:
        return f"verification of signature {self.signature_id}: {'ok' if self.ok else 'failed'}"


class RetrainTrigger(models.TextChoices):
    """What makes a model due for a new version."""

    SCHEDULE = "schedule", "On a schedule"
    NEW_DATA = "new_data", "New version of a training dataset"
    DEGRADATION = "degradation", "Degradation in serving"


class RetrainRule(models.Model):
    """A rule saying when a model is due for a new version: a cron schedule, new training data, or degradation."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="retrain_rules")
    trigger = models.CharField(max_length=16, choices=RetrainTrigger.choices)
    cron = models.CharField(max_length=100, blank=True, default="")  # minute hour day-of-month month day-of-week
    enabled = models.BooleanField(default=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "pk"]
        indexes = [models.Index(fields=["trigger", "enabled", "next_due_at"], name="retrain_rule_due")]

    def __str__(self) -> str:
        return f"retrain rule {self.pk} ({self.trigger})"


class RetrainRequest(models.Model):
    """One firing of a retrain rule: why a new version is due and the semantic-version bump it suggests."""

    rule = models.ForeignKey(RetrainRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="firings")
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="retrain_requests")
    trigger = models.CharField(max_length=16, choices=RetrainTrigger.choices)
    reason = models.TextField()
    suggested_bump = models.CharField(max_length=8)
    suggested_semver = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"retrain request {self.pk} for model {self.model_id}"
