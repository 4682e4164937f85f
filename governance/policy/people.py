"""Who holds the roles a policy names on a model, as querysets (the SQL form of the role predicates)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from governance.permissions import COMPLIANCE_GROUP
from registry.models import ModelRole, RegisteredModel, Role


def _holding(model: RegisteredModel, role: int) -> QuerySet:
    """Active users holding at least `role` on `model`: staff, the owner, and grants to them or their groups."""
    User = get_user_model()
    grants = ModelRole.objects.filter(model_id=model.pk, role__gte=role)
    direct = Exists(grants.filter(user_id=OuterRef("pk")))
    by_group = Exists(grants.filter(group__user=OuterRef("pk")))
    return User.objects.filter(Q(is_staff=True) | Q(is_superuser=True) | Q(pk=model.owner_id) | direct | by_group,
                               is_active=True)


def reviewers(model: RegisteredModel) -> QuerySet:
    """People who hold the reviewer role (or higher) on the model."""
    return _holding(model, Role.REVIEWER)


def maintainers(model: RegisteredModel) -> QuerySet:
    """People who hold the maintainer role (or higher) on the model: those who may approve its policy changes."""
    return _holding(model, Role.MAINTAINER)


def compliance_viewers(model: RegisteredModel) -> QuerySet:
    """Members of the compliance group who can see the model."""
    return _holding(model, Role.VIEWER).filter(groups__name=COMPLIANCE_GROUP).distinct()


def approvers(model: RegisteredModel, *, compliance: bool) -> QuerySet:
    """People who could approve a promotion: reviewers, and compliance members when the policy asks for them."""
    User = get_user_model()
    if not compliance:
        return reviewers(model)
    return User.objects.filter(Q(pk__in=reviewers(model).values("pk")) |
                               Q(pk__in=compliance_viewers(model).values("pk")))
