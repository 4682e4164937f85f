"""Tracking artifacts: where a run's, a logged model's or a version's files live, listing, reading and uploading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from registry import permissions
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import SpooledUpload, blob_put
from registry.errors import InvalidInput, NotFound
from registry.models import Artifact, LoggedModel, ModelVersion, Run, TrackedArtifact
from registry.tracking.common import clean_int
from registry.tracking.logged_models import logged_models_visible
from registry.tracking.runs import require_active, runs_visible

REGISTRY_ROOT = "registry"  # mlflow-artifacts:/registry/<model pk>/<version number>/... serves a version's files


def run_artifact_uri(run: Run) -> str:
    """Where a run's artifacts live, as the client sees it."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts"


def logged_model_artifact_uri(lm: LoggedModel) -> str:
    """Where a logged model's files live, as the client sees it."""
    return f"mlflow-artifacts:/{lm.experiment_id}/models/{lm.model_id}/artifacts"


def version_artifact_uri(version: ModelVersion) -> str:
    """Where a registered version's own file tree is served, as the client sees it."""
    return f"mlflow-artifacts:/{REGISTRY_ROOT}/{version.model_id}/{version.number}"


@dataclass
class ArtifactRoot:
    """An artifact root named by an mlflow-artifacts path, with the rest of the path inside it."""

    run: Run | None = None
    logged_model: LoggedModel | None = None
    version: ModelVersion | None = None
    rel: str = ""

    def rows(self) -> QuerySet:
        """The files under this root (TrackedArtifact or Artifact rows)."""
        if self.version is not None:
            return Artifact.objects.filter(version=self.version)
        if self.run is not None:
            return TrackedArtifact.objects.filter(run=self.run)
        return TrackedArtifact.objects.filter(logged_model=self.logged_model)


def artifact_root_resolve(*, actor: Any, path: str) -> ArtifactRoot:
    """Map an mlflow-artifacts path to the run, logged model or version that owns it, checking visibility."""
    clean = path.rstrip("/")
    if not clean:
        raise NotFound("No such artifact root: ''")
    # The same rules as uploads: an absolute path, a drive letter or a traversal is a 400, never an empty answer.
    clean = validate_artifact_path(clean)
    parts = clean.split("/")
    if parts[0] == REGISTRY_ROOT and len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
        version = ModelVersion.objects.select_related("model").filter(
            model__in=permissions.visible_models(actor), model_id=int(parts[1]), number=int(parts[2])
        ).first()
        if version is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(version=version, rel="/".join(parts[3:]))
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        experiment_id = clean_int(parts[0], "experiment id")
        lm = logged_models_visible(actor).filter(pk=parts[2], experiment_id=experiment_id).first()
        if lm is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(logged_model=lm, rel="/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        run = runs_visible(actor).filter(pk=parts[1], experiment_id=clean_int(parts[0], "experiment id")).first()
        if run is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(run=run, rel="/".join(parts[3:]))
    raise NotFound(f"No such artifact: '{path}'")


def artifact_list(root: ArtifactRoot) -> list[dict[str, Any]]:
    """List the immediate children of `root.rel`: [{path, is_dir, file_size?}] (empty for a file or nothing)."""
    prefix = f"{root.rel}/" if root.rel else ""
    seen: dict[str, dict[str, Any]] = {}
    for path, size in root.rows().filter(path__startswith=prefix).values_list("path", "size"):
        if not path.startswith(prefix):
            continue  # SQLite's LIKE ignores case
        rest = path[len(prefix):]
        head, sep, _ = rest.partition("/")
        if sep:
            seen.setdefault(head, {"path": head, "is_dir": True})
        else:
            seen[head] = {"path": head, "is_dir": False, "file_size": size}
    return [seen[k] for k in sorted(seen)]


def artifact_file(root: ArtifactRoot) -> Any:
    """Return the row (with its blob) for the file at `root.rel`, or raise NotFound."""
    row = root.rows().select_related("blob").filter(path=root.rel).first() if root.rel else None
    if row is None:
        raise NotFound(f"No such artifact: '{root.rel}'")
    return row


def artifact_file_servable(root: ArtifactRoot) -> Any:
    """Return the file at `root.rel` whose bytes may be handed out; raise NotFound, or Quarantined when a version's
    file is withheld (or a run's file holds content quarantined in a version and not released)."""
    from registry.pipeline.scan.trust import ensure_digest_servable, ensure_servable

    row = artifact_file(root)
    if root.version is not None:
        row.version = root.version
        ensure_servable(row)
    else:
        ensure_digest_servable(row.blob_id, path=row.path)
    return row


@transaction.atomic
def artifact_put(*, actor: Any, root: ArtifactRoot, upload: SpooledUpload) -> TrackedArtifact:
    """Store an uploaded file under a run's or logged model's root (content-addressed, replacing that path)."""
    try:
        if root.version is not None:
            raise InvalidInput("A registered version's files are read-only here; upload through the native API.")
        path = validate_artifact_path(root.rel)
        if root.run is not None:
            require_active(root.run)
        fmt = upload.format
        blob = blob_put(upload)
    except BaseException:
        upload.discard()
        raise
    owner = {"run": root.run} if root.run is not None else {"logged_model": root.logged_model}
    row, _ = TrackedArtifact.objects.update_or_create(
        **owner, path=path, defaults={"blob": blob, "size": blob.size, "format": fmt}
    )
    return row
