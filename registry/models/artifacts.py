"""Stored files: content-addressed blobs and the version file trees that point at them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from registry.models.core import ModelVersion


class Blob(models.Model):
    """Content-addressed bytes in the artifact store, keyed by SHA-256."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by garbage collection when it first finds nothing referring to the blob, cleared by any upload of the same
    # content (and by a collection that finds a reference again); the blob goes once this is older than the grace.
    unreferenced_since = models.DateTimeField(null=True, blank=True)

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
    CSV = "csv", "CSV"
    IMAGE = "image", "Image"
    PARQUET = "parquet", "Parquet"
    SAFETENSORS = "safetensors", "safetensors"
    NPY = "npy", "NumPy array (.npy)"
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


class StoreCollection(models.Model):
    """One garbage collection of the artifact store: what it deleted, how many bytes it freed, what it left alone."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    grace_seconds = models.FloatField()
    blobs_deleted = models.PositiveIntegerField(default=0)
    bytes_freed = models.BigIntegerField(default=0)
    blobs_marked = models.PositiveIntegerField(default=0)
    unknown_files = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"artifact store collection #{self.pk}"
