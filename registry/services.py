"""Every registry write: one function per use case, one transaction, the acting user, one domain event."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import events, gates, permissions, prepared, selectors, validation
from registry.artifacts import sources
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import SpooledUpload, blob_put
from registry.errors import AlreadyExists, Forbidden, InvalidInput, InvalidState, NotFound
from registry.models import (
    TOKEN_SCOPES,
    AccessToken,
    Alias,
    Artifact,
    Blob,
    ModelRole,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Role,
    Stage,
    VersionDataset,
    VersionStatus,
    VersionTag,
)
from registry.prepared import Prepared

TOKEN_PREFIX = "stm_"  # noqa: S105 - a public prefix, not a secret


_MODEL_FOR_UPDATE: Prepared[RegisteredModel] = Prepared(
    lambda pk: RegisteredModel.objects.select_for_update().filter(pk=pk), pk=int)


def _lock_model(model: RegisteredModel) -> RegisteredModel:
    """The model as it is now, locked for the rest of the transaction (writers of one model serialise on it)."""
    locked = _MODEL_FOR_UPDATE.one(pk=model.pk)
    if locked is None:
        raise RegisteredModel.DoesNotExist("RegisteredModel matching query does not exist.")
    return locked


def _lock_version(version: ModelVersion) -> tuple[RegisteredModel, ModelVersion]:
    """Lock the version's model (writers serialise on it), then reload the version as it is now."""
    model = _lock_model(version.model)
    return model, ModelVersion.objects.select_for_update().get(pk=version.pk)


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
    if RegisteredModel.objects.filter(name=name).exists():
        raise AlreadyExists(f"Registered model {name!r} already exists.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(name=name, description=description, owner=actor)
    except IntegrityError:
        raise AlreadyExists(f"Registered model {name!r} already exists.")
    ModelTag.objects.bulk_create([ModelTag(model=model, key=k, value=v) for k, v in tag_map.items()])
    events.emit("registered_model.created", actor=actor, target=model,
                data={"name": name, "description": description, "tags": tag_map})
    return model


@transaction.atomic
def model_update(*, model: RegisteredModel, actor, description: str | None = None) -> RegisteredModel:
    """Change a model's description."""
    model = _lock_model(model)
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
    model = _lock_model(model)
    permissions.require(permissions.can_maintain, actor, model, action="rename")
    new_name = validation.model_name(new_name)
    old = model.name
    if new_name == old:
        return model
    if RegisteredModel.objects.filter(name=new_name).exists():
        raise AlreadyExists(f"Registered model {new_name!r} already exists.")
    model.name = new_name
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise AlreadyExists(f"Registered model {new_name!r} already exists.")
    events.emit("registered_model.renamed", actor=actor, target=model, data={"before": old, "after": new_name})
    return model


@transaction.atomic
def model_delete(*, model: RegisteredModel, actor) -> None:
    """Delete a model with its versions, aliases and tags (blobs stay: they may be shared)."""
    model = _lock_model(model)
    permissions.require(permissions.can_maintain, actor, model, action="delete")
    if model.versions.filter(stage=Stage.PRODUCTION).exists():
        raise InvalidState(f"Model {model.name!r} has a version in Production; archive it before deleting.")
    events.emit("registered_model.deleted", actor=actor, target=model,
                data={"name": model.name, "versions": model.last_version_number})
    model.delete()


@transaction.atomic
def model_tag_set(*, model: RegisteredModel, actor, key: str, value: str) -> ModelTag:
    """Set (create or replace) a tag on a model."""
    model = _lock_model(model)
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
    model = _lock_model(model)
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
    model = _lock_model(model)
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
    model = _lock_model(model)
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
    files: Iterable[tuple[str, SpooledUpload]] = (),
    linked_files: Iterable[tuple[str, Blob, str]] = (),
    number: int | None = None,
) -> ModelVersion:
    """Register the next version of `model` with its provenance and files; the number is allocated atomically.

    `linked_files` are (path, blob, format) triples already in the store (a run's or logged model's files):
    the version's tree points at those blobs, no bytes are copied. `number` (imports only) keeps another
    registry's numbering: it must be above every number the model has used.

    The input is checked before the transaction opens: on SQLite writers take turns, and each holds the write
    lock only for the reads and writes that need it.
    """
    files = list(files)
    linked = list(linked_files)
    try:
        fields = {
            "source_uri": sources.validate_source(source_uri) if source_uri else "",
            "run_id": validation.text(run_id, "Run id", 64),
            "description": validation.text(description, "Description", 100_000),
            "semver": validation.semver(semver),
            "metrics": validation.metrics(metrics),
            "params": validation.params(params),
            "signature": validation.signature(signature),
            "code_repository": validation.text(code_repository, "Code repository", 2048),
            "code_commit": validation.text(code_commit, "Code commit", 64),
            "environment": validation.environment(environment),
        }
        dataset_rows = validation.datasets(datasets)
        tag_map = validation.tags(tags)
        paths = [validate_artifact_path(path) for path, _ in files]
        linked = [(validate_artifact_path(path), blob, fmt) for path, blob, fmt in linked]
        if len(set(paths) | {path for path, _, _ in linked}) != len(paths) + len(linked):
            raise InvalidInput("Two uploaded files have the same path.")
        if semver_bump and fields["semver"]:
            raise InvalidInput("Give either a semantic version or a bump (major/minor/patch), not both.")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
            raise InvalidInput("Version number must be a positive integer.")
        with transaction.atomic():
            model = _lock_model(model)
            permissions.require(permissions.can_contribute, actor, model, action="register versions")
            if model.deprecated:
                raise InvalidState(f"Model {model.name!r} is deprecated; register versions on its successor.")
            if semver_bump:
                current = validation.highest_semver(model.versions.exclude(semver="").values_list("semver",
                                                                                                  flat=True))
                fields["semver"] = validation.semver_next(current, semver_bump)
            if fields["semver"] and model.versions.filter(semver=fields["semver"]).exists():
                raise AlreadyExists(f"Model {model.name!r} already has a version {fields['semver']}.")
            if number is not None:
                if number <= model.last_version_number:
                    raise AlreadyExists(f"Model {model.name!r} has already used version number {number}.")
                model.last_version_number = number
            else:
                model.last_version_number += 1
            prepared.update(model, ("last_version_number", "updated_at"))
            version = prepared.insert(ModelVersion(model=model, number=model.last_version_number, creator=actor,
                                                   **fields))
            dataset_objs = VersionDataset.objects.bulk_create([VersionDataset(version=version, **row)
                                                               for row in dataset_rows])
            tag_objs = VersionTag.objects.bulk_create([VersionTag(version=version, key=k, value=v)
                                                       for k, v in tag_map.items()])
            # What the version holds is known here: listeners and the response read it without querying it back.
            selectors.prime_related(version, tags=tag_objs, datasets=dataset_objs, aliases=[])
            stored = [_artifact_store(version, path, upload) for path, (_, upload) in zip(paths, files, strict=True)]
            stored += Artifact.objects.bulk_create([
                Artifact(version=version, path=path, blob=blob, size=blob.size, format=fmt)
                for path, blob, fmt in linked
            ])
            events.emit("model_version.created", actor=actor, target=version, data={
                "model": model.name, "version": version.number, "semver": version.semver,
                "source_uri": version.source_uri, "run_id": version.run_id,
                "files": [{"path": a.path, "sha256": a.blob_id, "size": a.size} for a in stored],
            })
    except BaseException:
        for _, upload in files:
            upload.discard()
        raise
    return version


def version_create_from_source(
    *, model: RegisteredModel, actor, source_uri: str, run_id: str = "", model_id: str = "",
    description: str = "", tags: Any = None,
) -> ModelVersion:
    """Register a version from an MLflow-style source, inheriting its run id, files, params, metrics and datasets."""
    from registry.tracking import services as tracking

    source_uri = sources.validate_source(source_uri)
    tag_map = validation.tags(tags)
    sources.check_tags(tag_map)
    permissions.require(permissions.can_contribute, actor, model, action="register versions")
    prov = tracking.source_provenance(actor=actor, source=source_uri, run_id=run_id, model_id=model_id)
    return version_create(
        model=model, actor=actor, source_uri=source_uri, run_id=prov.run_id, description=description,
        metrics=prov.metrics, params=prov.params, datasets=prov.datasets, tags=tag_map, linked_files=prov.files,
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


@transaction.atomic
def version_tag_set(*, version: ModelVersion, actor, key: str, value: str) -> VersionTag:
    """Set (create or replace) a tag on a version."""
    model = _lock_model(version.model)
    permissions.require(permissions.can_contribute, actor, model, action="tag versions")
    key, value = validation.tag(key, value)
    before = VersionTag.objects.filter(version=version, key=key).values_list("value", flat=True).first()
    obj, _ = VersionTag.objects.update_or_create(version=version, key=key, defaults={"value": value})
    events.emit("model_version.tag_set", actor=actor, target=version,
                data={"key": key, "before": before, "after": value})
    return obj


@transaction.atomic
def version_tag_delete(*, version: ModelVersion, actor, key: str) -> None:
    """Remove a tag from a version."""
    model = _lock_model(version.model)
    permissions.require(permissions.can_contribute, actor, model, action="tag versions")
    deleted, _ = VersionTag.objects.filter(version=version, key=key).delete()
    if not deleted:
        raise NotFound(f"Version {version.number} has no tag {key!r}.")
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
    model = _lock_model(model)
    permissions.require(permissions.can_maintain, actor, model, action="move aliases")
    if version.model_id != model.pk:
        raise InvalidInput(f"Version {version.number} does not belong to model {model.name!r}.")
    gates.check_protected_move(model=model, kind="alias", target=alias, version=version, actor=actor)
    previous = Alias.objects.filter(model=model, name=alias).values_list("version__number", flat=True).first()
    obj, _ = Alias.objects.update_or_create(model=model, name=alias, defaults={"version": version})
    events.emit("model_version_alias.set", actor=actor, target=version,
                data={"alias": alias, "from_version": previous, "to_version": version.number})
    return obj


@transaction.atomic
def alias_delete(*, model: RegisteredModel, alias: str, actor) -> None:
    """Remove an alias from a model."""
    model = _lock_model(model)
    permissions.require(permissions.can_maintain, actor, model, action="move aliases")
    obj = Alias.objects.filter(model=model, name=alias).select_related("version").first()
    if obj is None:
        raise NotFound(f"Model {model.name!r} has no alias {alias!r}.")
    version = obj.version
    obj.delete()
    events.emit("model_version_alias.deleted", actor=actor, target=version,
                data={"alias": alias, "from_version": version.number})


# ------------------------------------------------------------------------------------------------ roles


@transaction.atomic
def role_grant(
    *, model: RegisteredModel, actor, role: int, user=None, group: Group | None = None
) -> ModelRole:
    """Grant `role` on `model` to a user or a group (replacing what they held)."""
    model = _lock_model(model)
    permissions.require(permissions.can_manage_roles, actor, model, action="manage roles")
    if (user is None) == (group is None):
        raise InvalidInput("Grant a role to exactly one user or one group.")
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.")
    lookup = {"user": user} if user is not None else {"group": group}
    if user is not None:
        user.__dict__.pop("_stratum_roles", None)
    obj, _ = ModelRole.objects.update_or_create(model=model, **lookup, defaults={"role": role})
    grantee = user.get_username() if user is not None else f"group:{group.name}"
    events.emit("model_role.granted", actor=actor, target=model,
                data={"grantee": grantee, "role": Role(role).label})
    return obj


@transaction.atomic
def role_revoke(*, model: RegisteredModel, actor, user=None, group: Group | None = None) -> None:
    """Revoke whatever role a user or group holds on `model`."""
    model = _lock_model(model)
    permissions.require(permissions.can_manage_roles, actor, model, action="manage roles")
    if (user is None) == (group is None):
        raise InvalidInput("Revoke the role of exactly one user or one group.")
    lookup = {"user": user} if user is not None else {"group": group}
    if user is not None:
        user.__dict__.pop("_stratum_roles", None)
    deleted, _ = ModelRole.objects.filter(model=model, **lookup).delete()
    if not deleted:
        raise NotFound("No such role grant.")
    grantee = user.get_username() if user is not None else f"group:{group.name}"
    events.emit("model_role.revoked", actor=actor, target=model, data={"grantee": grantee})


# ----------------------------------------------------------------------------------------------- tokens


def token_hash(raw: str) -> str:
    """Return the stored hash of a raw token (tokens carry 256 bits of randomness, so SHA-256 suffices)."""
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, actor, name: str, expires_at: datetime | None = None,
                 scopes: list[str] | None = None) -> tuple[AccessToken, str]:
    """Create a personal access token for `user`; return it with the raw secret, which is never stored."""
    if actor.pk != user.pk and not actor.is_superuser:
        raise Forbidden("You may only create tokens for yourself.")
    scopes = ["api"] if scopes is None else scopes
    if (not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes)
            or not set(scopes) <= set(TOKEN_SCOPES)):
        raise InvalidInput(f"Token scopes must be a non-empty list drawn from {', '.join(TOKEN_SCOPES)}.")
    scopes = sorted(set(scopes))
    name = validation.text(name, "Token name", 100).strip()
    if not name:
        raise InvalidInput("Token name is required.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("Token expiry must be in the future.")
    prefix = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = AccessToken.objects.create(
        user=user, name=name, prefix=prefix, token_hash=token_hash(raw), expires_at=expires_at, scopes=scopes
    )
    events.emit("access_token.created", actor=actor, target=token,
                data={"user": user.get_username(), "name": name, "prefix": prefix, "scopes": scopes,
                      "expires_at": expires_at.isoformat() if expires_at else None})
    return token, raw


@transaction.atomic
def token_revoke(*, token: AccessToken, actor) -> AccessToken:
    """Revoke a token at once; it can never be used again."""
    if actor.pk != token.user_id and not actor.is_superuser:
        raise Forbidden("You may only revoke your own tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])  # the save clears the checked-token cache (registry.apps)
        events.emit("access_token.revoked", actor=actor, target=token,
                    data={"user": token.user.get_username(), "prefix": token.prefix})
    return token
