"""Four-eyes release of a quarantined file: a model maintainer asks, for one content digest, naming the exact globals
accepted and why; an administrator who is not the requester approves; either may withdraw it. Every step is audited.

A release covers the content in its model only, and only while the scan's offending globals stay within those it
accepted: a rescan that finds more quarantines the file again.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from registry import events, permissions
from registry.errors import AlreadyExists, Forbidden, InvalidInput, InvalidState, NotFound
from registry.locking import model_lock
from registry.models import ArtifactRelease, ArtifactScan, ModelVersion, RegisteredModel, ReleaseState
from registry.selectors import artifact_get

MAX_REASON = 5000


def _event_data(release: ArtifactRelease, **extra: Any) -> dict[str, Any]:
    version = release.version
    return {"model_id": release.model_id, "model": release.model.name,
            "version_number": version.number if version is not None else None, "path": release.path,
            "sha256": release.blob_id, "accepted_globals": list(release.accepted_globals), **extra}


def _clean_reason(reason: Any, what: str) -> str:
    text = str(reason or "").strip()
    if not text:
        raise InvalidInput(f"Give a reason for {what}.")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"The reason is longer than {MAX_REASON} characters.")
    return text


def _clean_globals(accepted: Any) -> list[str]:
    if not isinstance(accepted, list | tuple) or not all(isinstance(g, str) for g in accepted):
        raise InvalidInput("accepted_globals must be a list of module.name strings.")
    return sorted({g.strip() for g in accepted if g.strip()})


def release_request(*, version: ModelVersion, path: str, accepted_globals: Any, reason: Any,
                    actor: Any) -> ArtifactRelease:
    """Ask for the quarantined content of `path` in `version` to be released (maintainers): `accepted_globals` must
    list exactly the globals its scan objected to."""
    model = version.model
    permissions.require(permissions.can_request_release, actor, model, action="request the release of a file")
    reason = _clean_reason(reason, "releasing a quarantined file")
    accepted = _clean_globals(accepted_globals)
    with transaction.atomic():
        model = model_lock(model.pk)  # the lock order of registry/locking.py: the model first
        artifact = artifact_get(version=version, path=path)
        scan = ArtifactScan.objects.filter(artifact=artifact, blob_id=artifact.blob_id).first()
        if scan is None or not scan.quarantined:
            raise InvalidState(f"{artifact.path} is not quarantined; there is nothing to release.")
        offending = sorted(set(scan.offending or []))
        if accepted != offending:
            raise InvalidInput(
                f"accepted_globals must list exactly the globals the scan of {artifact.path} objected to: "
                f"{offending or '[] (the scan could not read the file)'}; got {accepted}.",
                details={"offending": offending, "accepted_globals": accepted})
        open_release = ArtifactRelease.objects.filter(
            model=model, blob_id=artifact.blob_id, state__in=[ReleaseState.REQUESTED, ReleaseState.APPROVED]).first()
        if open_release is not None:
            raise AlreadyExists(f"A release of this content of {artifact.path} is already {open_release.state} "
                                f"(release {open_release.pk}); revoke it first to ask again.")
        release = ArtifactRelease.objects.create(
            model=model, blob_id=artifact.blob_id, version=version, path=artifact.path, accepted_globals=accepted,
            reason=reason, requested_by=actor)
        events.emit("artifact_release.requested", actor=actor, target=release,
                    data=_event_data(release, reason=reason, verdict=scan.verdict, scanner=scan.scanner))
    return release


def release_approve(*, release: ArtifactRelease, actor: Any) -> ArtifactRelease:
    """Approve a requested release (administrators, never the requester): the content is served again."""
    model = release.model
    if not permissions.can_view(actor, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    if not permissions.can_approve_release(actor, model, release.requested_by_id):
        if release.requested_by_id == getattr(actor, "pk", None):
            raise Forbidden("You asked for this release; another person, an administrator, must approve it.")
        raise Forbidden("Only an administrator may approve the release of a quarantined file.")
    with transaction.atomic():
        model_lock(model.pk)
        release = ArtifactRelease.objects.select_for_update(no_key=True, of=("self",)).select_related(
            "model", "version", "requested_by").get(pk=release.pk)
        if release.state != ReleaseState.REQUESTED:
            raise InvalidState(f"Release {release.pk} is {release.state}; only a requested release can be approved.")
        release.state, release.approved_by, release.approved_at = ReleaseState.APPROVED, actor, timezone.now()
        release.save(update_fields=["state", "approved_by", "approved_at"])
        events.emit("artifact_release.approved", actor=actor, target=release,
                    data=_event_data(release, requested_by=release.requested_by.get_username()
                                     if release.requested_by else None))
    return release


def release_revoke(*, release: ArtifactRelease, actor: Any, reason: Any) -> ArtifactRelease:
    """Withdraw a release or a request for one (maintainers of the model, administrators): the content is
    quarantined again at once, on every route."""
    model = release.model
    permissions.require(permissions.can_revoke_release, actor, model, action="revoke releases")
    reason = _clean_reason(reason, "revoking a release")
    with transaction.atomic():
        model_lock(model.pk)
        release = ArtifactRelease.objects.select_for_update(no_key=True, of=("self",)).select_related(
            "model", "version", "requested_by").get(pk=release.pk)
        if release.state == ReleaseState.REVOKED:
            raise InvalidState(f"Release {release.pk} is already revoked.")
        was = release.state
        release.state, release.revoked_by, release.revoked_at = ReleaseState.REVOKED, actor, timezone.now()
        release.revoke_reason = reason
        release.save(update_fields=["state", "revoked_by", "revoked_at", "revoke_reason"])
        events.emit("artifact_release.revoked", actor=actor, target=release,
                    data=_event_data(release, reason=reason, previous_state=was))
    return release


def model_releases(*, model: RegisteredModel) -> QuerySet[ArtifactRelease]:
    """Return a model's releases, newest first, with who asked, approved and revoked (fixed number of queries)."""
    return (ArtifactRelease.objects.filter(model=model)
            .select_related("model", "version", "requested_by", "approved_by", "revoked_by"))


def release_get(*, model: RegisteredModel, pk: int) -> ArtifactRelease:
    """Return one release of an already visible model, or raise NotFound."""
    release = model_releases(model=model).filter(pk=pk).first()
    if release is None:
        raise NotFound(f"Model {model.name!r} has no release {pk}.")
    return release
