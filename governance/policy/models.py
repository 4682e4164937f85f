"""Promotion policy versions: each edit an immutable document with its hash, proposed then approved by another."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

DEFAULT_SCOPE = "default"


class PolicyState(models.TextChoices):
    """Where a policy version stands: proposed → active → superseded, or rejected / withdrawn."""

    PROPOSED = "proposed", "Proposed"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PromotionPolicyVersion(models.Model):
    """One version of the promotion policy of a protected target (or of the model-wide default; kind and target
    blank); the document, its source and hash never change after creation, only the state moves on."""

    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, blank=True, default="")
    target = models.CharField(max_length=256, blank=True, default="")
    number = models.PositiveIntegerField()
    # None: this version lifts the protection of the target (it proposes that no policy applies any more).
    document = models.JSONField(null=True, blank=True)
    source = models.TextField(blank=True, default="")
    sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=PolicyState.choices, default=PolicyState.PROPOSED,
                             db_index=True)
    note = models.TextField(blank=True, default="")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_username = models.CharField(max_length=150, blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_by_username = models.CharField(max_length=150, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "kind", "target", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "kind", "target", "number"], name="uniq_policy_version"),
            models.UniqueConstraint(fields=["model", "kind", "target"], condition=Q(state="active"),
                                    name="one_active_policy_per_scope"),
            models.UniqueConstraint(fields=["model", "kind", "target"], condition=Q(state="proposed"),
                                    name="one_proposed_policy_per_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} policy v{self.number}"

    @property
    def scope(self) -> str:
        """The scope as people and URLs name it: "default", "alias:champion" or "stage:Production"."""
        return f"{self.kind}:{self.target}" if self.kind else DEFAULT_SCOPE

    @property
    def scope_label(self) -> str:
        if not self.kind:
            return "Model-wide default"
        return f"@{self.target}" if self.kind == "alias" else self.target
