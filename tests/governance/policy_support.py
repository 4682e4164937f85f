"""Test helpers for promotion policies: the second maintainer's approval every policy change waits for."""

from __future__ import annotations

from typing import Any

from governance import services
from governance.models import PolicyState, PromotionPolicyVersion
from governance.policy import services as policy_services


def approve_pending(model: Any, approver: Any) -> None:
    """Approve, as `approver` (another maintainer), every policy version of `model` waiting for approval."""
    for version in PromotionPolicyVersion.objects.filter(model=model, state=PolicyState.PROPOSED):
        policy_services.policy_approve(version=version, actor=approver)


def protect(*, approver: Any, **kwargs: Any) -> Any:
    """Set a target's protection (protected_target_set) and have `approver` approve the change at once."""
    target = services.protected_target_set(**kwargs)
    approve_pending(kwargs["model"], approver)
    target.refresh_from_db()
    return target
