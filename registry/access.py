"""Access writes: per-model roles and personal API tokens, each one service with its audit event."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from registry import events, permissions, validation
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.locking import model_lock
from registry.models import TOKEN_SCOPES, AccessToken, ModelRole, RegisteredModel, Role

TOKEN_PREFIX = "stm_"  # noqa: S105 - a public prefix, not a secret


# ------------------------------------------------------------------------------------------------ roles


@transaction.atomic
def role_grant(
    *, model: RegisteredModel, actor, role: int, user=None, group: Group | None = None
) -> ModelRole:
    """Grant `role` on `model` to a user or a group (replacing what they held)."""
    model = model_lock(model)
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
    model = model_lock(model)
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
