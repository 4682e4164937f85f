"""Who may do what: per-model roles (granted to users or groups) and personal API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from registry.models.core import RegisteredModel


class Role(models.IntegerChoices):
    """Per-model roles, each including the ones below it."""

    VIEWER = 10, "viewer"
    CONTRIBUTOR = 20, "contributor"
    REVIEWER = 30, "reviewer"
    MAINTAINER = 40, "maintainer"
    OWNER = 50, "owner"


class ModelRole(models.Model):
    """A role on one model, granted to a user or to a group."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    role = models.PositiveSmallIntegerField(choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False)),
                name="role_user_xor_group",
            ),
            models.UniqueConstraint(fields=["model", "user"], condition=Q(user__isnull=False), name="uniq_role_user"),
            models.UniqueConstraint(
                fields=["model", "group"], condition=Q(group__isnull=False), name="uniq_role_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} on model {self.model_id}"


TOKEN_SCOPES = ("api", "serve")


def default_token_scopes() -> list[str]:
    """Return the scopes a token gets when none are named: the registry APIs."""
    return ["api"]


class AccessToken(models.Model):
    """A personal API token: shown once, stored only as a SHA-256 hash, found by its public prefix."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # "api": the REST and MLflow APIs; "serve": the serving gateway only. A leaked serving token cannot change the
    # registry, and an API token does not serve predictions.
    scopes = models.JSONField(default=default_token_scopes)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.prefix} ({self.name})"
