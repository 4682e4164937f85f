"""Registry data: models, versions, tags, aliases, artifacts, roles, tokens, and MLflow-style experiment tracking."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q


class Stage(models.TextChoices):
    """Lifecycle stage of a version, as in MLflow."""

    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class VersionStatus(models.TextChoices):
    """Registration status of a version."""

    PENDING = "PENDING_REGISTRATION", "Pending"
    READY = "READY", "Ready"
    FAILED = "FAILED_REGISTRATION", "Failed"


class DatasetRole(models.TextChoices):
    """What a dataset was used for when training a version."""

    TRAIN = "train", "Training"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"


class Role(models.IntegerChoices):
    """Per-model roles, each including the ones below it."""

    VIEWER = 10, "viewer"
    CONTRIBUTOR = 20, "contributor"
    REVIEWER = 30, "reviewer"
    MAINTAINER = 40, "maintainer"
    OWNER = 50, "owner"


class RegisteredModel(models.Model):
    """A named model: the unit of ownership, access control and versioning."""

    name = models.CharField(max_length=256, unique=True)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_version_number = models.PositiveIntegerField(default=0)
    deprecated = models.BooleanField(default=False)
    deprecation_reason = models.TextField(blank=True, default="")
    successor = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelTag(models.Model):
    """A key/value tag on a registered model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=5000, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="uniq_model_tag_key")]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ModelVersion(models.Model):
    """One registered version of a model, with its provenance."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    semver = models.CharField(max_length=64, blank=True, default="")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    status = models.CharField(max_length=24, choices=VersionStatus.choices, default=VersionStatus.READY)
    status_message = models.TextField(blank=True, default="")
    source_uri = models.CharField(max_length=2048, blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    description = models.TextField(blank=True, default="")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metrics = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    signature = models.JSONField(default=dict, blank=True)
    code_repository = models.CharField(max_length=2048, blank=True, default="")
    code_commit = models.CharField(max_length=64, blank=True, default="")
    environment = models.JSONField(default=list, blank=True)
    deprecated = models.BooleanField(default=False)
    deprecation_reason = models.TextField(blank=True, default="")
    successor = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["model_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="uniq_version_number"),
            models.UniqueConstraint(
                fields=["model", "semver"], condition=~Q(semver=""), name="uniq_version_semver"
            ),
        ]
        indexes = [models.Index(fields=["model", "stage", "number"], name="version_model_stage_number")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.number}"


class VersionTag(models.Model):
    """A key/value tag on a model version."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.CharField(max_length=5000, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="uniq_version_tag_key")]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class VersionDataset(models.Model):
    """A dataset a version was trained, validated or tested on."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=256)
    uri = models.CharField(max_length=2048, blank=True, default="")
    digest = models.CharField(max_length=128, blank=True, default="")
    role = models.CharField(max_length=16, choices=DatasetRole.choices, default=DatasetRole.TRAIN)

    class Meta:
        ordering = ["role", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class Alias(models.Model):
    """A named pointer (champion, prod …) to exactly one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=256)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="uniq_alias_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Blob(models.Model):
    """Content-addressed bytes in the artifact store, keyed by SHA-256."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256

    @property
    def storage_name(self) -> str:
        return f"blobs/{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}"


class ArtifactFormat(models.TextChoices):
    """File format detected from content."""

    PICKLE = "pickle", "Pickle"
    JOBLIB = "joblib", "Joblib"
    COMPRESSED = "compressed", "Compressed (gzip/zlib/bz2/xz/lz4)"
    ONNX = "onnx", "ONNX"
    ZIP = "zip", "Zip archive"
    MLMODEL = "mlmodel", "MLflow MLmodel"
    JSON = "json", "JSON"
    TEXT = "text", "Text"
    BINARY = "binary", "Binary"


class Artifact(models.Model):
    """One file of a version's file tree: a validated relative path pointing at a blob."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="artifacts")
    size = models.BigIntegerField()
    format = models.CharField(max_length=16, choices=ArtifactFormat.choices, default=ArtifactFormat.BINARY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="uniq_artifact_path")]

    def __str__(self) -> str:
        return self.path


class ModelRole(models.Model):
    """A role on one model, granted to a user or to a group."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    role = models.PositiveSmallIntegerField(choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False)),
                name="role_user_xor_group",
            ),
            models.UniqueConstraint(fields=["model", "user"], condition=Q(user__isnull=False), name="uniq_role_user"),
            models.UniqueConstraint(
                fields=["model", "group"], condition=Q(group__isnull=False), name="uniq_role_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} on model {self.model_id}"


TOKEN_SCOPES = ("api", "serve")


def default_token_scopes() -> list[str]:
    """Return the scopes a token gets when none are named: the registry APIs."""
    return ["api"]


class AccessToken(models.Model):
    """A personal API token: shown once, stored only as a SHA-256 hash, found by its public prefix."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # "api": the REST and MLflow APIs; "serve": the serving gateway only. A leaked serving token cannot change the
    # registry, and an API token does not serve predictions.
    scopes = models.JSONField(default=default_token_scopes)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.prefix} ({self.name})"


# ------------------------------------------------------------------------------- MLflow-style tracking


class LifecycleStage(models.TextChoices):
    """Whether an experiment or run is live or soft-deleted, as in MLflow."""

    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class Experiment(models.Model):
    """An MLflow experiment: a named group of runs and logged models (id 0 is the shared Default)."""

    name = models.CharField(max_length=500, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    """Status of a training run, as in MLflow."""

    RUNNING = "RUNNING", "Running"
    SCHEDULED = "SCHEDULED", "Scheduled"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    KILLED = "KILLED", "Killed"


class Run(models.Model):
    """One training run: who ran it, when, and what it logged (params, metric history, tags, inputs)."""

    run_id = models.CharField(max_length=32, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField(null=True, blank=True)
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time", "run_id"]

    def __str__(self) -> str:
        return self.name or self.run_id


class RunParam(models.Model):
    """A run's hyperparameter (immutable once logged)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_param_key")]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class RunMetric(models.Model):
    """One point of a run's metric history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    model_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["key", "step", "timestamp", "pk"]
        indexes = [models.Index(fields=["run", "key", "step", "timestamp"], name="run_metric_history")]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.value}"


class RunTag(models.Model):
    """A key/value tag on a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_tag_key")]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class RunInput(models.Model):
    """A dataset a run consumed (MLflow log_inputs), with the context tag (train/validation/test)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=128, blank=True, default="")
    source_type = models.CharField(max_length=64, blank=True, default="")
    source = models.TextField(blank=True, default="")
    schema = models.TextField(blank=True, default="")
    profile = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name", "digest"], name="uniq_run_input")]
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name


class LoggedModelStatus(models.TextChoices):
    """Upload state of an MLflow 3 logged model."""

    PENDING = "LOGGED_MODEL_PENDING", "Pending"
    READY = "LOGGED_MODEL_READY", "Ready"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED", "Upload failed"


class LoggedModel(models.Model):
    """An MLflow 3 logged model: a file tree produced by a run (or without one) that versions can register."""

    model_id = models.CharField(max_length=64, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    name = models.CharField(max_length=500)
    source_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="outputs")
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    status = models.CharField(max_length=32, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    model_type = models.CharField(max_length=250, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "model_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"


class TrackedArtifact(models.Model):
    """One file logged to a run's or a logged model's artifact root: a relative path pointing at a blob."""

    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    logged_model = models.ForeignKey(LoggedModel, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="artifacts")
    path = models.CharField(max_length=1024)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="tracked_artifacts")
    size = models.BigIntegerField()
    format = models.CharField(max_length=16, choices=ArtifactFormat.choices, default=ArtifactFormat.BINARY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(run__isnull=False, logged_model__isnull=True)
                           | Q(run__isnull=True, logged_model__isnull=False)),
                name="tracked_artifact_one_owner",
            ),
            models.UniqueConstraint(fields=["run", "path"], condition=Q(run__isnull=False),
                                    name="uniq_run_artifact_path"),
            models.UniqueConstraint(fields=["logged_model", "path"], condition=Q(logged_model__isnull=False),
                                    name="uniq_logged_model_artifact_path"),
        ]

    def __str__(self) -> str:
        return self.path


from registry.lineage_models import *  # noqa: E402,F403
from registry.pipeline_models import *  # noqa: E402,F403
