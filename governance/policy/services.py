"""Every write of promotion policies: propose a version, approve it (someone else), reject or withdraw it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from governance import permissions
from governance.models import DEFAULT_SCOPE, PolicyState, PromotionPolicyVersion, ProtectedTarget
from registry import events
from registry import permissions as registry_permissions
from registry import validation as registry_validation
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.locking import model_lock
from registry.models import RegisteredModel

from .schema import digest, parse_scope, protection_fields, to_yaml
from .validation import validate


def _require_manager(actor: Any, model: RegisteredModel) -> None:
    registry_permissions.require(registry_permissions.can_view, actor, model, action="see it")
    if not permissions.can_manage_protection(actor, model):
        raise Forbidden(f"Only maintainers of {model.name!r} may change its promotion policies.")


def _scope_label(kind: str, target: str) -> str:
    if not kind:
        return "the model-wide default"
    return f"@{target}" if kind == "alias" else target


@transaction.atomic
def policy_propose(*, model: RegisteredModel, actor: Any, scope: str, source: Any = None, remove: bool = False,
                   note: str = "", check_people: bool = True) -> PromotionPolicyVersion:
    """Propose a new version of the policy of `scope` (a YAML/JSON document, or `remove` to lift a target's
    protection). It takes effect once another maintainer approves it; the one exception is a first policy for a
    target nothing protects yet, which only adds review and so takes effect at once."""
    model = model_lock(model.pk)
    _require_manager(actor, model)
    kind, target = parse_scope(scope)
    note = registry_validation.text(note or "", "Note", 10_000).strip()
    protection = ProtectedTarget.objects.filter(model=model, kind=kind, name=target).first() if kind else None
    if remove:
        if not kind:
            raise InvalidInput("The model-wide default cannot be removed; propose a new version of it instead.")
        if protection is None:
            raise NotFound(f"The {kind} {target!r} of {model.name!r} is not protected.")
        document, text = None, ""
    else:
        document, text = validate(source, model=model, check_people=check_people)
    # The model lock above serialises every policy write of the model: numbers and the one pending version hold.
    versions = PromotionPolicyVersion.objects.filter(model=model, kind=kind, target=target)
    pending = versions.filter(state=PolicyState.PROPOSED).first()
    if pending is not None:
        raise InvalidState(f"Version {pending.number} of the policy of {_scope_label(kind, target)} is waiting for "
                           "approval; approve, reject or withdraw it first.",
                           details={"pending_version": pending.number})
    active = versions.filter(state=PolicyState.ACTIVE).first()
    sha = digest(document)
    if active is not None and active.sha256 == sha:
        raise InvalidInput(f"This is the policy in force already (version {active.number}); nothing to change.")
    number = (versions.aggregate(top=Max("number"))["top"] or 0) + 1
    immediate = bool(kind) and protection is None and active is None and document is not None
    version = PromotionPolicyVersion.objects.create(
        model=model, kind=kind, target=target, number=number, document=document, source=text, sha256=sha,
        note=note, author=actor, author_username=actor.get_username(),
        state=PolicyState.ACTIVE if immediate else PolicyState.PROPOSED)
    data = {"model_id": model.pk, "model": model.name, "scope": version.scope, "number": number, "sha256": sha,
            "document": document, "removal": document is None, "note": note,
            "previous": {"number": active.number, "sha256": active.sha256} if active else None}
    if immediate:
        protection = ProtectedTarget.objects.create(model=model, kind=kind, name=target, created_by=actor,
                                                    **protection_fields(document))
        events.emit("protected_target.created", actor=actor, target=protection,
                    data=data | {"kind": kind, "name": target, "after": protection_fields(document)})
    else:
        events.emit("promotion_policy.proposed", actor=actor, target=version, data=data)
    return version


def _lock_version(version: PromotionPolicyVersion) -> PromotionPolicyVersion:
    model_lock(version.model_id)
    return PromotionPolicyVersion.objects.select_for_update(of=("self",)).select_related("model").get(pk=version.pk)


@transaction.atomic
def policy_approve(*, version: PromotionPolicyVersion, actor: Any, comment: str = "") -> PromotionPolicyVersion:
    """Approve a proposed version as a maintainer other than its author: it replaces the version in force."""
    version = _lock_version(version)
    model = version.model
    _require_manager(actor, model)
    if version.state != PolicyState.PROPOSED:
        raise InvalidState(f"Version {version.number} is {version.state}; only a proposed version can be approved.")
    if version.author_id == actor.pk:
        raise Forbidden("You proposed this version; another maintainer must approve it (four-eyes rule).")
    comment = registry_validation.text(comment or "", "Comment", 10_000).strip()
    previous = PromotionPolicyVersion.objects.select_for_update().filter(
        model=model, kind=version.kind, target=version.target, state=PolicyState.ACTIVE).first()
    if previous is not None:
        previous.state = PolicyState.SUPERSEDED
        previous.save(update_fields=["state"])
    now = timezone.now()
    version.state, version.decided_by, version.decided_at = PolicyState.ACTIVE, actor, now
    version.decided_by_username, version.decision_comment = actor.get_username(), comment
    version.save(update_fields=["state", "decided_by", "decided_by_username", "decided_at", "decision_comment"])
    if version.kind:
        protection = ProtectedTarget.objects.filter(model=model, kind=version.kind, name=version.target).first()
        if version.document is None:
            if protection is not None:
                protection.delete()
        elif protection is None:
            ProtectedTarget.objects.create(model=model, kind=version.kind, name=version.target,
                                           created_by=version.author, **protection_fields(version.document))
        else:
            for key, value in protection_fields(version.document).items():
                setattr(protection, key, value)
            protection.save()
    events.emit("promotion_policy.approved", actor=actor, target=version, data={
        "model_id": model.pk, "model": model.name, "scope": version.scope, "number": version.number,
        "sha256": version.sha256, "author": version.author_username, "comment": comment,
        "removal": version.document is None, "superseded": previous.number if previous else None})
    return version


@transaction.atomic
def policy_reject(*, version: PromotionPolicyVersion, actor: Any, comment: str = "") -> PromotionPolicyVersion:
    """Reject a proposed version (another maintainer, with a reason) or withdraw it (its author)."""
    version = _lock_version(version)
    model = version.model
    _require_manager(actor, model)
    if version.state != PolicyState.PROPOSED:
        raise InvalidState(f"Version {version.number} is {version.state}; only a proposed version can be rejected.")
    comment = registry_validation.text(comment or "", "Comment", 10_000).strip()
    withdrawn = version.author_id == actor.pk
    if not withdrawn and not comment:
        raise InvalidInput("Say why you reject this version: a comment is required.")
    version.state = PolicyState.WITHDRAWN if withdrawn else PolicyState.REJECTED
    version.decided_by, version.decided_by_username = actor, actor.get_username()
    version.decided_at, version.decision_comment = timezone.now(), comment
    version.save(update_fields=["state", "decided_by", "decided_by_username", "decided_at", "decision_comment"])
    events.emit("promotion_policy.withdrawn" if withdrawn else "promotion_policy.rejected", actor=actor,
                target=version, data={"model_id": model.pk, "model": model.name, "scope": version.scope,
                                      "number": version.number, "sha256": version.sha256, "comment": comment})
    return version


def draft_source(version: PromotionPolicyVersion | None) -> str:
    """The text a person starts editing from: the version's own source, or its document as YAML."""
    if version is None:
        return ""
    return version.source or to_yaml(version.document)


__all__ = ["DEFAULT_SCOPE", "draft_source", "policy_approve", "policy_propose", "policy_reject"]
