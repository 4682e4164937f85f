"""Governance fixtures: a model with a champion in Production, protected, and the people around it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from governance import services
from governance.erasure import services as erasure_services
from registry import services as registry_services
from registry.lineage import services as lineage
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
                                      approvals_required=2, allow_emergency_rollback=True,
                                      required_gates=["metrics"])  # the versions here have no files to scan or sign
    return {"model": registered_model, "v1": v1, "v2": v2}


SUBJECT = "jane.doe+erasure@example.org"
OTHERS = ["alex@example.org", "sam@example.org"]


@pytest.fixture
def world(owner, registered_model, make_version, make_user):
    """Two datasets hold the subject and feed three versions (one through a feature set) and one deployment."""
    officer = make_user("officer")
    officer.groups.add(Group.objects.get_or_create(name="compliance")[0])
    node = lambda **kw: lineage.node_create(actor=owner, **kw).obj  # noqa: E731
    d1 = node(kind="dataset", name="customers", version="2026-01", digest="sha256:" + "1" * 64)
    d2 = node(kind="dataset", name="events", version="2026-01", digest="sha256:" + "2" * 64)
    d3 = node(kind="dataset", name="weather", version="2026-01", digest="sha256:" + "3" * 64)
    features = node(kind="feature_set", name="event-features", version="7")
    versions = [make_version(registered_model, owner, metrics={"auc": 0.8 + i / 100}) for i in range(4)]
    vn = [lineage.node_create(actor=owner, kind="model_version", model_version=v).obj for v in versions]
    edge = lambda up, down, kind: lineage.edge_create(actor=owner, upstream=up, downstream=down, kind=kind)  # noqa: E731
    edge(d1, vn[0], "trained_on")
    edge(d2, features, "derived_from")
    edge(features, vn[1], "uses_features")
    edge(d1, vn[2], "trained_on")
    edge(d2, vn[2], "trained_on")
    edge(d3, vn[3], "trained_on")
    deployment = node(kind="deployment", name="churn-prod", external_id="dep-1", model=registered_model)
    edge(vn[2], deployment, "deployed_as")
    erasure_services.manifest_upload(node=d1, actor=officer, identifiers=[SUBJECT, *OTHERS])
    erasure_services.manifest_upload(node=d2, actor=officer, identifiers=[SUBJECT, OTHERS[0]])
    erasure_services.manifest_upload(node=d3, actor=officer, identifiers=OTHERS)
    return {"officer": officer, "d1": d1, "d2": d2, "d3": d3, "versions": versions, "deployment": deployment,
            "model": registered_model, "owner": owner}
