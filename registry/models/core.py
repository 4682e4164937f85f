"""Registry core data: registered models, versions, their tags, datasets and aliases."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


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


def words_index(field: str, name: str) -> GinIndex:
    """A trigram index on UPPER(field), what `field__icontains` compares on PostgreSQL, so that plain-word search
    (registry.search.words) finds its rows through the index instead of reading each one. PostgreSQL only: migration
    0014 creates none on SQLite."""
    return GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


def search_index(field: str, name: str) -> GinIndex:
    """A trigram index on a column stored upper-cased (registry.search.text), which word search compares as it is.
    PostgreSQL only, like words_index."""
    return GinIndex(fields=[field], opclasses=["gin_trgm_ops"], name=name)


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
        indexes = [words_index("name", "model_name_words"), words_index("description", "model_description_words")]

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
        indexes = [words_index("value", "model_tag_value_words")]

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
    # What plain-word search reads: the model's name, this description and the tag values, upper-cased, kept current
    # by the services (registry.search.text), so a word is one trigram-indexed column, not a join, a subquery and an OR.
    search_text = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["model_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "number"], name="uniq_version_number"),
            models.UniqueConstraint(
                fields=["model", "semver"], condition=~Q(semver=""), name="uniq_version_semver"
            ),
        ]
        indexes = [models.Index(fields=["model", "stage", "number"], name="version_model_stage_number"),
                   search_index("search_text", "version_search_words")]

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
        indexes = [words_index("value", "version_tag_value_words")]

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
