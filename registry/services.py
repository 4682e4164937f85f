"""Every registry write: one function per use case, one transaction, the acting user, one domain event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import events, gates, permissions, selectors, validation
from registry.artifacts import sources
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import SpooledUpload, blob_put
from registry.errors import AlreadyExists, Forbidden, InvalidInput, InvalidState, NotFound
from registry.lineage import features as lineage_features
from registry.lineage import services as lineage_services
from registry.locking import model_lock, models_lock
from registry.models import (
    Alias,
    Artifact,
    Blob,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionDataset,
    VersionStatus,
    VersionTag,
)
from registry.search import text as search_text

# Every write here follows the lock order of registry/locking.py: the model's row first, then the version, events last.


def _lock_version(version: ModelVersion) -> tuple[RegisteredModel, ModelVersion]:
    """Lock the version's model (writers serialise on it), then reload the version as it is now."""
    model = model_lock(version.model_id)
    version = ModelVersion.objects.select_for_update(no_key=True).get(pk=version.pk)
    version.model = model  # listeners of its events read the model as it is now, without a query
    return model, version


# ----------------------------------------------------------------------------------------------- models


@transaction.atomic
def model_create(
    *, actor, name: str, description: str = "", tags: Any = None
) -> RegisteredModel:
    """Create a registered model owned by `actor`."""
    if not permissions.can_create_model(actor):
        raise Forbidden("You must be signed in to create a model.")
    name = validation.model_name(name)
    description = validation.text(description, "Description", 100_000)
    tag_map = validation.tags(tags)
    _check_name_free(name)
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(name=name, description=description, owner=actor)
    except IntegrityError:
        raise AlreadyExists(f"Registered model {name!r} already exists.")
    ModelTag.objects.bulk_create([ModelTag(model=model, key=k, value=v) for k, v in tag_map.items()])
    events.emit("registered_model.created", actor=actor, target=model,
                data={"name": name, "description": description, "tags": tag_map})
    return model


def _check_name_free(name: str, *, model: RegisteredModel | None = None) -> None:
    """Refuse a name taken by another model, or one a reader could take for another model's name (the same
    skeleton: case, compatibility forms and confusable letters aside), since `models:/<name>@alias` resolves it."""
    if RegisteredModel.objects.filter(name=name).exclude(pk=getattr(model, "pk", None)).exists():
        raise AlreadyExists(f"Registered model {name!r} already exists.")
    folded, mapped = validation.name_skeletons(name)
    others = RegisteredModel.objects.exclude(pk=getattr(model, "pk", None)).values_list("name", flat=True)
    for other in others.iterator(chunk_size=2000):
        other_folded, other_mapped = validation.name_skeletons(other)
        if folded == other_folded or mapped == other_mapped:
            # The other model may be hidden from the actor: the refusal does not name it.
            raise AlreadyExists(f"Registered model name {name!r} is too easily confused with an existing model's "
                                "name; choose one that differs by more than case or look-alike letters.")


@transaction.atomic
def model_update(*, model: RegisteredModel, actor, description: str | None = None) -> RegisteredModel:
    """Change a model's description."""
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="edit")
    changes: dict[str, Any] = {}
    if description is not None:
        description = validation.text(description, "Description", 100_000)
        if description != model.description:
            changes["description"] = {"before": model.description, "after": description}
            model.description = description
    model.save()
    events.emit("registered_model.updated", actor=actor, target=model, data=changes)
    return model


@transaction.atomic
def model_rename(*, model: RegisteredModel, actor, new_name: str) -> RegisteredModel:
    """Rename a model; its versions, aliases and roles follow."""
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="rename")
    new_name = validation.model_name(new_name)
    old = model.name
    if new_name == old:
        return model
    _check_name_free(new_name, model=model)
    model.name = new_name
    # The event first: changing a unique column locks the row FOR UPDATE, which belongs after the chain's lock
    # (registry/locking.py). A refused save rolls the event back with the rest.
    events.emit("registered_model.renamed", actor=actor, target=model, data={"before": old, "after": new_name})
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise AlreadyExists(f"Registered model {new_name!r} already exists.")
    search_text.version_search_fill(model.versions.all())  # the name is part of each version's search text
    return model


@transaction.atomic
def model_delete(*, model: RegisteredModel, actor) -> None:
    """Delete a model with its versions, aliases and tags (blobs stay: they may be shared)."""
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="delete")
    if model.versions.filter(stage=Stage.PRODUCTION).exists():
        raise InvalidState(f"Model {model.name!r} has a version in Production; archive it before deleting.")
    events.emit("registered_model.deleted", actor=actor, target=model,
                data={"name": model.name, "versions": model.last_version_number})
    model.delete()


@transaction.atomic
def model_tag_set(*, model: RegisteredModel, actor, key: str, value: str) -> ModelTag:
    """Set (create or replace) a tag on a model."""
    model = model_lock(model)
    permissions.require(permissions.can_contribute, actor, model, action="tag")
    key, value = validation.tag(key, value)
    before = ModelTag.objects.filter(model=model, key=key).values_list("value", flat=True).first()
    obj, _ = ModelTag.objects.update_or_create(model=model, key=key, defaults={"value": value})
    events.emit("registered_model.tag_set", actor=actor, target=model,
                data={"key": key, "before": before, "after": value})
    return obj


@transaction.atomic
def model_tag_delete(*, model: RegisteredModel, actor, key: str) -> None:
    """Remove a tag from a model."""
    model = model_lock(model)
    permissions.require(permissions.can_contribute, actor, model, action="tag")
    deleted, _ = ModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"Model {model.name!r} has no tag {key!r}.")
    events.emit("registered_model.tag_deleted", actor=actor, target=model, data={"key": key})


@transaction.atomic
def model_deprecate(
    *, model: RegisteredModel, actor, reason: str, successor: RegisteredModel | None = None
) -> RegisteredModel:
    """Mark a model deprecated with a reason and an optional successor model."""
    locked = models_lock([model, successor])  # the successor is referenced: both locked, in the one order
    model = locked[model.pk]
    permissions.require(permissions.can_maintain, actor, model, action="deprecate")
    reason = validation.text(reason, "Reason", 5000).strip()
    if not reason:
        raise InvalidInput("A deprecation reason is required.")
    if successor is not None and successor.pk == model.pk:
        raise InvalidInput("A model cannot be its own successor.")
    model.deprecated, model.deprecation_reason, model.successor = True, reason, successor
    model.save()
    events.emit("registered_model.deprecated", actor=actor, target=model,
                data={"reason": reason, "successor": successor.name if successor else None})
    return model


@transaction.atomic
def model_undeprecate(*, model: RegisteredModel, actor) -> RegisteredModel:
    """Clear a model's deprecation."""
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="undeprecate")
    model.deprecated, model.deprecation_reason, model.successor = False, "", None
    model.save()
    events.emit("registered_model.undeprecated", actor=actor, target=model, data={})
    return model


# --------------------------------------------------------------------------------------------- versions


def version_create(
    *,
    model: RegisteredModel,
    actor,
    source_uri: str = "",
    run_id: str = "",
    description: str = "",
    semver: str | None = None,
    semver_bump: str | None = None,
    metrics: Any = None,
    params: Any = None,
    signature: Any = None,
    code_repository: str = "",
    code_commit: str = "",
    environment: Any = None,
    datasets: Any = None,
    tags: Any = None,
    feature_sets: Any = None,
    files: Iterable[tuple[str, SpooledUpload]] = (),
    linked_files: Iterable[tuple[str, Blob, str]] = (),
    number: int | None = None,
) -> ModelVersion:
    """Register the next version of `model` with its provenance and files; the number is allocated atomically.

    `linked_files` are (path, blob, format) triples already in the store (a run's or logged model's files):
    the version's tree points at those blobs, no bytes are copied. `number` (imports only) keeps another
    registry's numbering: it must be above every number the model has used. `feature_sets` (JSON, or specs already
    parsed) are recorded as lineage in the same transaction: dataset -> feature set -> this version.

    The input is checked before the transaction opens: on SQLite writers take turns, and each holds the write
    lock only for the reads and writes that need it.
    """
    files = list(files)
    try:
        fields = version_fields_validate(source_uri=source_uri, run_id=run_id, description=description, semver=semver,
                                 metrics=metrics, params=params, signature=signature,
                                 code_repository=code_repository, code_commit=code_commit, environment=environment)
        dataset_rows = validation.datasets(datasets)
        tag_map = validation.tags(tags)
        feature_specs = lineage_features.feature_sets_coerce(feature_sets)
        paths = [validate_artifact_path(path) for path, _ in files]
        linked = [(validate_artifact_path(path), blob, fmt) for path, blob, fmt in linked_files]
        if len(set(paths) | {path for path, _, _ in linked}) != len(paths) + len(linked):
            raise InvalidInput("Two uploaded files have the same path.")
        if semver_bump and fields["semver"]:
            raise InvalidInput("Give either a semantic version or a bump (major/minor/patch), not both.")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
            raise InvalidInput("Version number must be a positive integer.")
        with transaction.atomic():
            model = model_lock(model)
            permissions.require(permissions.can_contribute, actor, model, action="register versions")
            text = search_text.version_search_text(model_name=model.name, description=fields["description"],
                                                   tag_values=[tag_map[key] for key in sorted(tag_map)])
            version = _version_allocate(model, actor=actor, fields={**fields, "search_text": search_text.folded(text)},
                                        semver_bump=semver_bump, number=number)
            VersionDataset.objects.bulk_create([VersionDataset(version=version, **row) for row in dataset_rows])
            VersionTag.objects.bulk_create([VersionTag(version=version, key=k, value=v) for k, v in tag_map.items()])
            # Listeners and the response read what the version holds without querying for what is known empty.
            selectors.version_prefetch_new(version, tags=bool(tag_map), datasets=bool(dataset_rows))
            declared = []
            if feature_specs:  # the graph's lock before the audit chain's (the event below): registry/locking.py
                lineage_services.graph_lock()
                version_node, _ = lineage_services.version_node_ensure(version)
                declared = lineage_features.feature_sets_record(actor=actor, version_node=version_node,
                                                                specs=feature_specs)
            stored = [_artifact_store(version, path, upload) for path, (_, upload) in zip(paths, files, strict=True)]
            stored += Artifact.objects.bulk_create([
                Artifact(version=version, path=path, blob=blob, size=blob.size, format=fmt)
                for path, blob, fmt in linked
            ])
            events.emit("model_version.created", actor=actor, target=version, data={
                "model": model.name, "version": version.number, "semver": version.semver,
                "source_uri": version.source_uri, "run_id": version.run_id,
                "files": [{"path": a.path, "sha256": a.blob_id, "size": a.size} for a in stored],
                **({"feature_sets": declared} if declared else {}),
            })
    except BaseException:
        for _, upload in files:
            upload.discard()
        raise
    return version


def version_fields_validate(*, source_uri: str, run_id: str, description: str, semver: str | None, metrics: Any,
                    params: Any, signature: Any, code_repository: str, code_commit: str,
                    environment: Any) -> dict[str, Any]:
    """The new version's own columns, validated; every field is checked, and an InvalidInput names each bad one
    (its details map field -> message, so a form shows them all at once)."""
    checks: dict[str, Callable[[], Any]] = {
        "source_uri": lambda: sources.validate_source(source_uri) if source_uri else "",
        "run_id": lambda: validation.text(run_id, "Run id", 64),
        "description": lambda: validation.text(description, "Description", 100_000),
        "semver": lambda: validation.semver(semver),
        "metrics": lambda: validation.metrics(metrics),
        "params": lambda: validation.params(params),
        "signature": lambda: validation.signature(signature),
        "code_repository": lambda: validation.text(code_repository, "Code repository", 2048),
        "code_commit": lambda: validation.text(code_commit, "Code commit", 64),
        "environment": lambda: validation.environment(environment),
    }
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, check in checks.items():
        try:
            fields[name] = check()
        except InvalidInput as error:
            errors[name] = error.message
    if errors:
        raise InvalidInput(" ".join(errors.values()), details={"fields": errors})
    return fields


def _version_allocate(model: RegisteredModel, *, actor, fields: dict[str, Any], semver_bump: str | None,
                      number: int | None) -> ModelVersion:
    """Take the next number (or `number`) on the locked `model` and insert the version's row."""
    if model.deprecated:
        raise InvalidState(f"Model {model.name!r} is deprecated; register versions on its successor.")
    if semver_bump:
        current = validation.highest_semver(model.versions.exclude(semver="").values_list("semver", flat=True))
        fields = {**fields, "semver": validation.semver_next(current, semver_bump)}
    if fields["semver"] and model.versions.filter(semver=fields["semver"]).exists():
        raise AlreadyExists(f"Model {model.name!r} already has a version {fields['semver']}.")
    if number is not None:
        if number <= model.last_version_number:
            raise AlreadyExists(f"Model {model.name!r} has already used version number {number}.")
        model.last_version_number = number
    else:
        model.last_version_number += 1
    model.save(update_fields=["last_version_number", "updated_at"])
    return ModelVersion.objects.create(model=model, number=model.last_version_number, creator=actor, **fields)


def version_create_from_source(
    *, model: RegisteredModel, actor, source_uri: str, run_id: str = "", model_id: str = "",
    description: str = "", tags: Any = None,
) -> ModelVersion:
    """Register a version from an MLflow-style source, inheriting its run id, files, params, metrics and datasets."""
    from registry.tracking import provenance

    source_uri = sources.validate_source(source_uri)
    tag_map = validation.tags(tags)
    sources.check_tags(tag_map)
    permissions.require(permissions.can_contribute, actor, model, action="register versions")
    prov = provenance.source_provenance(actor=actor, source=source_uri, run_id=run_id, model_id=model_id)
    if prov.feature_set_errors:
        raise InvalidInput(" ".join(prov.feature_set_errors), details={"errors": prov.feature_set_errors})
    return version_create(
        model=model, actor=actor, source_uri=source_uri, run_id=prov.run_id, description=description,
        metrics=prov.metrics, params=prov.params, datasets=prov.datasets, tags=tag_map, linked_files=prov.files,
        feature_sets=prov.feature_sets,
    )


def _artifact_store(version: ModelVersion, path: str, upload: SpooledUpload) -> Artifact:
    fmt = upload.format
    blob = blob_put(upload)
    artifact, _ = Artifact.objects.update_or_create(
        version=version, path=path, defaults={"blob": blob, "size": blob.size, "format": fmt}
    )
    return artifact


@transaction.atomic
def artifact_add(*, version: ModelVersion, actor, path: str, upload: SpooledUpload) -> Artifact:
    """Add (or replace) one file in a version's tree."""
    try:
        path = validate_artifact_path(path)
        model, version = _lock_version(version)
        permissions.require(permissions.can_contribute, actor, model, action="upload artifacts")
        if version.stage in (Stage.PRODUCTION, Stage.ARCHIVED):
            raise InvalidState(f"Version {version.number} is {version.stage}; its files can no longer change.")
        previous = Artifact.objects.filter(version=version, path=path).values_list("blob_id", flat=True).first()
        artifact = _artifact_store(version, path, upload)
    except BaseException:
        upload.discard()
        raise
    events.emit("model_version.artifact_added", actor=actor, target=version, data={
        "path": path, "sha256": artifact.blob_id, "size": artifact.size, "format": artifact.format,
        "replaced": previous,
    })
    return artifact


@transaction.atomic
def artifact_delete(*, version: ModelVersion, actor, path: str) -> None:
    """Remove one file from a version's tree (the blob stays: it may be shared)."""
    path = validate_artifact_path(path)
    model, version = _lock_version(version)
    permissions.require(permissions.can_contribute, actor, model, action="delete artifacts")
    if version.stage in (Stage.PRODUCTION, Stage.ARCHIVED):
        raise InvalidState(f"Version {version.number} is {version.stage}; its files can no longer change.")
    artifact = Artifact.objects.filter(version=version, path=path).first()
    if artifact is None:
        raise NotFound(f"Version {version.number} has no file {path!r}.")
    artifact.delete()
    events.emit("model_version.artifact_deleted", actor=actor, target=version,
                data={"path": path, "sha256": artifact.blob_id})


VERSION_EDITABLE = ("description", "semver", "source_uri", "run_id", "code_repository", "code_commit")


@transaction.atomic
def version_update(*, version: ModelVersion, actor, **changes: Any) -> ModelVersion:
    """Edit a version's description, semantic version, metrics, params or other provenance fields."""
    model, version = _lock_version(version)
    permissions.require(permissions.can_contribute, actor, model, action="edit versions")
    validators = {
        "description": lambda v: validation.text(v, "Description", 100_000),
        "semver": validation.semver,
        "source_uri": lambda v: sources.validate_source(v) if v else "",
        "run_id": lambda v: validation.text(v, "Run id", 64),
        "code_repository": lambda v: validation.text(v, "Code repository", 2048),
        "code_commit": lambda v: validation.text(v, "Code commit", 64),
        "metrics": validation.metrics,
        "params": validation.params,
        "signature": validation.signature,
        "environment": validation.environment,
    }
    unknown = set(changes) - set(validators)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    diff: dict[str, Any] = {}
    for field, raw in changes.items():
        value = validators[field](raw)
        if getattr(version, field) != value:
            diff[field] = {"before": getattr(version, field), "after": value}
            setattr(version, field, value)
    if "semver" in diff and version.semver and model.versions.filter(semver=version.semver).exclude(
        pk=version.pk
    ).exists():
        raise AlreadyExists(f"Model {model.name!r} already has a version {version.semver}.")
    if diff:
        if "description" in diff:
            version.search_text = search_text.folded(search_text.version_search_text_current(version))
        version.save()
        events.emit("model_version.updated", actor=actor, target=version, data=diff)
    return version


@transaction.atomic
def version_delete(*, version: ModelVersion, actor) -> None:
    """Delete a version (never one in Production); its number is never reused."""
    model, version = _lock_version(version)
    permissions.require(permissions.can_maintain, actor, model, action="delete versions")
    if version.stage == Stage.PRODUCTION:
        raise InvalidState(f"Version {version.number} is in Production; archive it before deleting.")
    events.emit("model_version.deleted", actor=actor, target=version,
                data={"model": model.name, "version": version.number})
    version.delete()
    model.save(update_fields=["updated_at"])  # the model changed: its versions are part of it (as in MLflow)


@transaction.atomic
def version_tag_set(*, version: ModelVersion, actor, key: str, value: str) -> VersionTag:
    """Set (create or replace) a tag on a version."""
    model, version = _lock_version(version)
    permissions.require(permissions.can_contribute, actor, model, action="tag versions")
    key, value = validation.tag(key, value)
    before = VersionTag.objects.filter(version=version, key=key).values_list("value", flat=True).first()
    obj, _ = VersionTag.objects.update_or_create(version=version, key=key, defaults={"value": value})
    search_text.version_search_refresh(version)
    events.emit("model_version.tag_set", actor=actor, target=version,
                data={"key": key, "before": before, "after": value})
    return obj


@transaction.atomic
def version_tag_delete(*, version: ModelVersion, actor, key: str) -> None:
    """Remove a tag from a version."""
    model, version = _lock_version(version)
    permissions.require(permissions.can_contribute, actor, model, action="tag versions")
    deleted, _ = VersionTag.objects.filter(version=version, key=key).delete()
    if not deleted:
        raise NotFound(f"Version {version.number} has no tag {key!r}.")
    search_text.version_search_refresh(version)
    events.emit("model_version.tag_deleted", actor=actor, target=version, data={"key": key})


@transaction.atomic
def version_transition_stage(
    *, version: ModelVersion, actor, stage: str, archive_existing_versions: bool = False
) -> ModelVersion:
    """Move a version to `stage`; optionally archive the others currently in that stage."""
    stage = validation.stage(stage)
    model, version = _lock_version(version)
    permissions.require(permissions.can_maintain, actor, model, action="transition stages")
    if version.status != VersionStatus.READY:
        raise InvalidState(f"Version {version.number} is not ready ({version.status}).")
    gates.check_protected_move(model=model, kind="stage", target=stage, version=version, actor=actor)
    previous = version.stage
    archived: list[int] = []
    if archive_existing_versions and stage in (Stage.STAGING, Stage.PRODUCTION):
        others = model.versions.filter(stage=stage).exclude(pk=version.pk)
        archived = list(others.values_list("number", flat=True))
        others.update(stage=Stage.ARCHIVED, updated_at=timezone.now())
    version.stage = stage
    version.save(update_fields=["stage", "updated_at"])
    model.save(update_fields=["updated_at"])
    events.emit("model_version.stage_transitioned", actor=actor, target=version, data={
        "from_stage": previous, "to_stage": stage, "archive_existing_versions": archive_existing_versions,
        "archived_versions": archived,
    })
    return version


@transaction.atomic
def version_deprecate(
    *, version: ModelVersion, actor, reason: str, successor: ModelVersion | None = None
) -> ModelVersion:
    """Mark a version deprecated with a reason and an optional successor version."""
    model, version = _lock_version(version)
    permissions.require(permissions.can_maintain, actor, model, action="deprecate versions")
    reason = validation.text(reason, "Reason", 5000).strip()
    if not reason:
        raise InvalidInput("A deprecation reason is required.")
    if successor is not None and successor.pk == version.pk:
        raise InvalidInput("A version cannot be its own successor.")
    version.deprecated, version.deprecation_reason, version.successor = True, reason, successor
    version.save()
    events.emit("model_version.deprecated", actor=actor, target=version,
                data={"reason": reason, "successor": str(successor) if successor else None})
    return version


# ---------------------------------------------------------------------------------------------- aliases


@transaction.atomic
def alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion, actor) -> Alias:
    """Point `alias` at `version`, replacing any version it pointed at before."""
    alias = validation.alias_name(alias)
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="move aliases")
    if version.model_id != model.pk:
        raise InvalidInput(f"Version {version.number} does not belong to model {model.name!r}.")
    gates.check_protected_move(model=model, kind="alias", target=alias, version=version, actor=actor)
    version.model = model  # the same row (checked above), as it is now: the event's listeners read it
    previous = Alias.objects.filter(model=model, name=alias).values_list("version__number", flat=True).first()
    obj, _ = Alias.objects.update_or_create(model=model, name=alias, defaults={"version": version})
    events.emit("model_version_alias.set", actor=actor, target=version,
                data={"alias": alias, "from_version": previous, "to_version": version.number})
    return obj


@transaction.atomic
def alias_delete(*, model: RegisteredModel, alias: str, actor) -> None:
    """Remove an alias from a model."""
    model = model_lock(model)
    permissions.require(permissions.can_maintain, actor, model, action="move aliases")
    obj = Alias.objects.filter(model=model, name=alias).select_related("version").first()
    if obj is None:
        raise NotFound(f"Model {model.name!r} has no alias {alias!r}.")
    version = obj.version
    version.model = model
    obj.delete()
    events.emit("model_version_alias.deleted", actor=actor, target=version,
                data={"alias": alias, "from_version": version.number})
