"""Governance fixtures: a model with a champion in Production, protected, and the people around it."""

from __future__ import annotations

import pytest

from governance import services
from registry import services as registry_services
from registry.models import Role


@pytest.fixture
def team(make_user, registered_model, grant):
    """engineer (contributor), r1/r2/r3 (reviewers), viewer, maintainer on the `churn` model."""
    people = {name: make_user(name) for name in ("engineer", "r1", "r2", "r3", "viewer", "maint")}
    for name in ("r1", "r2", "r3"):
        grant(registered_model, people[name], Role.REVIEWER)
    grant(registered_model, people["engineer"], Role.CONTRIBUTOR)
    grant(registered_model, people["viewer"], Role.VIEWER)
    grant(registered_model, people["maint"], Role.MAINTAINER)
    return people


@pytest.fixture
def protected(owner, registered_model, make_version, team):
    """v1 (by owner) is @champion and in Production; v2 (by engineer) is the candidate; both targets protected."""
    v1 = make_version(registered_model, owner, metrics={"auc": 0.80, "loss": 0.5}, params={"depth": "4"},
                      code_commit="a" * 40)
    v2 = make_version(registered_model, team["engineer"], metrics={"auc": 0.85, "loss": 0.4},
                      params={"depth": "6"}, code_commit="b" * 40,
                      datasets=[{"name": "events-2026", "uri": "s3://d/2026", "digest": "sha256:" + "1" * 64}])
    registry_services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    registry_services.version_transition_stage(version=v1, actor=owner, stage="Production")
    for kind, name in (("alias", "champion"), ("stage", "Production")):
        services.protected_target_set(model=registered_model, actor=owner, kind=kind, name=name,
                                      approvals_required=2, allow_emergency_rollback=True)
    return {"model": registered_model, "v1": v1, "v2": v2}
