"""MLflow-style experiment tracking data: experiments, runs with params, metrics, tags and inputs, logged models."""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models.artifacts import ArtifactFormat, Blob


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


class NanFloatField(models.FloatField):
    """A float column that holds NaN as NULL on every database: SQLite has no NaN (it stores NULL in its place),
    so PostgreSQL stores NULL too and both read it back as NaN, as MLflow logs it."""

    def get_prep_value(self, value: object) -> object:
        value = super().get_prep_value(value)
        return None if isinstance(value, float) and math.isnan(value) else value

    def from_db_value(self, value: object, expression: object, connection: object) -> object:
        return math.nan if value is None else value


class RunMetric(models.Model):
    """One point of a run's metric history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = NanFloatField(null=True)  # NULL is NaN
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
