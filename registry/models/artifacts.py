"""Stored files: content-addressed blobs and the version file trees that point at them."""

from __future__ import annotations

from django.db import models

from registry.models.core import ModelVersion


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
