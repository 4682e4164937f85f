"""Per-model roles: who may see, contribute, maintain and manage roles; outsiders cannot learn a model exists."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group

from registry import access, permissions, selectors, services
from registry.errors import Forbidden, NotFound
from registry.models import Alias, ModelRole, ModelTag, ModelVersion, RegisteredModel, Role, Stage, VersionTag

pytestmark = pytest.mark.django_db


def fresh(user):
    """Reload a user so no per-object role cache from earlier calls leaks into the check."""
    return get_user_model().objects.get(pk=user.pk)


def act(action, model, actor, make_user):
    """Run one named service call on `model` as `actor`."""
    version = model.versions.order_by("number").first()
    if action == "version_create":
        return services.version_create(model=model, actor=actor)
    if action == "version_tag_set":
        return services.version_tag_set(version=version, actor=actor, key="k", value="v")
    if action == "model_tag_set":
        return services.model_tag_set(model=model, actor=actor, key="k", value="v")
    if action == "alias_set":
        return services.alias_set(model=model, alias="champion", version=version, actor=actor)
    if action == "stage":
        return services.version_transition_stage(version=version, actor=actor, stage="Staging")
    if action == "model_update":
        return services.model_update(model=model, actor=actor, description="changed")
    if action == "version_delete":
        return services.version_delete(version=version, actor=actor)
    if action == "role_grant":
        return access.role_grant(model=model, actor=actor, user=make_user("grantee"), role=Role.VIEWER)
    raise AssertionError(action)


# action -> whether its effect is in the database now (read back fresh; the model starts with version 1 only).
DONE = {
    "version_create": lambda model: ModelVersion.objects.filter(model=model, number=2).exists(),
    "version_tag_set": lambda model: VersionTag.objects.filter(version__model=model, version__number=1, key="k",
                                                               value="v").exists(),
    "model_tag_set": lambda model: ModelTag.objects.filter(model=model, key="k", value="v").exists(),
    "alias_set": lambda model: Alias.objects.filter(model=model, name="champion", version__number=1).exists(),
    "stage": lambda model: ModelVersion.objects.filter(model=model, number=1, stage=Stage.STAGING).exists(),
    "model_update": lambda model: RegisteredModel.objects.filter(pk=model.pk, description="changed").exists(),
    "version_delete": lambda model: not ModelVersion.objects.filter(model=model, number=1).exists(),
    "role_grant": lambda model: ModelRole.objects.filter(model=model, user__username="grantee",
                                                         role=Role.VIEWER).exists(),
}

CONTRIBUTE = ["version_create", "version_tag_set", "model_tag_set"]
MAINTAIN = ["alias_set", "stage", "model_update", "version_delete"]
MANAGE = ["role_grant"]
ALL = CONTRIBUTE + MAINTAIN + MANAGE

# role -> actions it may perform; every other action must raise Forbidden.
ALLOWED = {
    Role.VIEWER: set(),
    Role.CONTRIBUTOR: set(CONTRIBUTE),
    Role.REVIEWER: set(CONTRIBUTE),
    Role.MAINTAINER: set(CONTRIBUTE + MAINTAIN),
    Role.OWNER: set(ALL),
}


@pytest.fixture
def model_with_version(registered_model, make_version):
    make_version(registered_model)
    return registered_model


@pytest.mark.parametrize("action", ALL)
@pytest.mark.parametrize("role", list(ALLOWED), ids=lambda r: Role(r).label)
def test_role_matrix(model_with_version, make_user, grant, role, action):
    user = make_user("member")
    grant(model_with_version, user, role)
    assert not DONE[action](model_with_version)
    if action in ALLOWED[role]:
        act(action, model_with_version, fresh(user), make_user)
        assert DONE[action](model_with_version), f"{Role(role).label} was allowed to {action} but nothing changed"
    else:
        with pytest.raises(Forbidden):
            act(action, model_with_version, fresh(user), make_user)
        assert not DONE[action](model_with_version)


@pytest.mark.parametrize("action", ALL)
def test_outsider_gets_not_found_not_forbidden(model_with_version, outsider, make_user, captured_events, action):
    with pytest.raises(NotFound) as excinfo:
        act(action, model_with_version, outsider, make_user)
    assert not isinstance(excinfo.value, Forbidden)
    assert "permission" not in str(excinfo.value).lower()
    assert captured_events == [] and not DONE[action](model_with_version)


def test_hidden_model_is_indistinguishable_from_missing(registered_model, outsider):
    with pytest.raises(NotFound) as hidden:
        selectors.model_get(actor=outsider, name="churn")
    with pytest.raises(NotFound) as missing:
        selectors.model_get(actor=outsider, name="nope")
    assert str(hidden.value).replace("churn", "X") == str(missing.value).replace("nope", "X")
    with pytest.raises(NotFound) as via_service:
        services.model_update(model=registered_model, actor=outsider, description="x")
    assert str(via_service.value) == str(hidden.value)


@pytest.mark.parametrize("action", ALL)
def test_staff_may_do_everything(model_with_version, staff, make_user, action):
    act(action, model_with_version, staff, make_user)
    assert DONE[action](model_with_version)


def test_viewer_cannot_register_versions(registered_model, make_user, grant):
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        services.version_create(model=registered_model, actor=fresh(viewer))
    assert not ModelVersion.objects.exists()


def test_contributor_registers_versions_but_cannot_move_aliases(registered_model, make_user, grant):
    contributor = make_user("contrib")
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    contributor = fresh(contributor)
    version = services.version_create(model=registered_model, actor=contributor)
    assert version.creator_id == contributor.pk
    with pytest.raises(Forbidden):
        services.alias_set(model=registered_model, alias="champion", version=version, actor=contributor)
    assert not Alias.objects.exists()


def test_maintainer_moves_aliases_but_cannot_manage_roles(registered_model, make_user, grant, outsider):
    maintainer = fresh(grant(registered_model, make_user("maint"), Role.MAINTAINER).user)
    version = services.version_create(model=registered_model, actor=maintainer)
    services.alias_set(model=registered_model, alias="champion", version=version, actor=maintainer)
    assert selectors.alias_resolve(model=registered_model, alias="champion").pk == version.pk
    with pytest.raises(Forbidden):
        access.role_grant(model=registered_model, actor=maintainer, user=outsider, role=Role.VIEWER)
    with pytest.raises(Forbidden):
        access.role_revoke(model=registered_model, actor=maintainer, user=maintainer)
    assert not ModelRole.objects.filter(user=outsider).exists()


def test_group_role_grants_access(registered_model, make_user, owner):
    member = make_user("member")
    team = Group.objects.create(name="ml-team")
    member.groups.add(team)
    access.role_grant(model=registered_model, actor=owner, group=team, role=Role.CONTRIBUTOR)
    member = fresh(member)
    assert permissions.can_contribute(member, registered_model)
    assert not permissions.can_maintain(member, registered_model)
    assert services.version_create(model=registered_model, actor=member).number == 1


def test_highest_of_user_and_group_role_wins(registered_model, make_user, owner, grant):
    member = make_user("member")
    team = Group.objects.create(name="ml-team")
    member.groups.add(team)
    grant(registered_model, member, Role.VIEWER)
    access.role_grant(model=registered_model, actor=owner, group=team, role=Role.MAINTAINER)
    assert permissions.model_role(fresh(member), registered_model) == Role.MAINTAINER


def test_visible_models(registered_model, owner, outsider, staff, make_user, grant):
    hidden = services.model_create(actor=make_user("someone"), name="secret")
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    team = Group.objects.create(name="t")
    viewer.groups.add(team)
    access.role_grant(model=registered_model, actor=owner, group=team, role=Role.VIEWER)

    def names(user):
        return list(permissions.visible_models(user).order_by("name").values_list("name", flat=True))

    assert names(owner) == ["churn"]
    assert names(fresh(viewer)) == ["churn"]  # direct and group grant: still listed once
    assert names(outsider) == []
    assert names(AnonymousUser()) == []
    assert names(None) == []
    assert names(staff) == ["churn", "secret"]
    assert permissions.can_view(staff, hidden)
    assert not permissions.can_view(outsider, hidden)
    assert [m.name for m in selectors.model_list(actor=outsider)] == []


def test_revoked_role_removes_access(registered_model, make_user, grant, owner):
    user = make_user("temp")
    grant(registered_model, user, Role.MAINTAINER)
    assert permissions.can_maintain(fresh(user), registered_model)
    access.role_revoke(model=registered_model, actor=owner, user=user)
    assert not permissions.can_view(fresh(user), registered_model)
    assert list(permissions.visible_models(fresh(user))) == []


def test_only_owner_or_staff_manage_roles(registered_model, staff, outsider):
    access.role_grant(model=registered_model, actor=staff, user=outsider, role=Role.VIEWER)
    assert permissions.can_view(fresh(outsider), registered_model)
    assert not permissions.can_manage_roles(fresh(outsider), registered_model)
    assert RegisteredModel.objects.get(pk=registered_model.pk).owner_id != staff.pk
