"""Cached hot reads (registry/caching.py): a repeated read costs no query, every event that changes what a read
holds retires it, no read returns a row cached before a committed change, and reads inside a transaction never
touch the cache. These tests commit for real (transaction=True): retirement runs on commit."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.cache import caches
from django.db import connections, transaction

from registry import access, selectors, services
from registry.errors import NotFound
from registry.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_caches():
    for alias in ("default", "local"):
        caches[alias].clear()
    yield
    for alias in ("default", "local"):
        caches[alias].clear()


@pytest.fixture
def champion(owner, make_version):
    """Model "cached" with versions 1 (tagged stage=old, aliased champion) and 2."""
    model = services.model_create(actor=owner, name="cached")
    v1 = make_version(model, tags={"stage": "old"})
    v2 = make_version(model)
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    return model, v1, v2


def _resolved(actor, name: str = "cached", alias: str = "champion"):
    return selectors.alias_find_by_name(actor=actor, name=name, alias=alias)


def test_a_repeated_read_costs_no_query_and_holds_everything_the_responses_show(champion, owner,
                                                                               django_assert_num_queries):
    assert _resolved(owner).number == 1
    selectors.model_get(actor=owner, name="cached")
    with django_assert_num_queries(0):
        version = _resolved(owner)
        assert (version.number, version.model.name, version.creator.username) == (1, "cached", "owner")
        assert [(t.key, t.value) for t in version.tags.all()] == [("stage", "old")]
        assert [a.name for a in version.aliases.all()] == ["champion"]
        assert list(version.datasets.all()) == [] and version.successor is None
        assert selectors.model_get(actor=owner, name="cached").owner.username == "owner"


def test_the_permission_check_runs_on_every_read_never_from_the_cache(champion, owner, outsider,
                                                                      django_assert_num_queries):
    model, _, _ = champion
    assert _resolved(owner).number == 1  # cached
    with django_assert_num_queries(1):  # the outsider's role lookup, nothing else
        assert _resolved(outsider) is None
    access.role_grant(model=model, actor=owner, user=outsider, role=Role.VIEWER)
    assert _resolved(outsider).number == 1
    assert selectors.model_get(actor=outsider, name="cached").name == "cached"
    access.role_revoke(model=model, actor=owner, user=outsider)
    assert _resolved(outsider) is None
    with pytest.raises(NotFound):
        selectors.model_get(actor=outsider, name="cached")


def _tags(version) -> dict[str, str]:
    return {t.key: t.value for t in version.tags.all()}


# (what changes, the change, what a read by alias then returns)
ALIAS_CHANGES: dict[str, tuple[Callable, Callable]] = {
    "alias moved": (lambda m, v1, v2, u: services.alias_set(model=m, alias="champion", version=v2, actor=u),
                    lambda u: _resolved(u).number == 2),
    "alias deleted": (lambda m, v1, v2, u: services.alias_delete(model=m, alias="champion", actor=u),
                      lambda u: _resolved(u) is None),
    "alias added": (lambda m, v1, v2, u: services.alias_set(model=m, alias="challenger", version=v2, actor=u),
                    lambda u: sorted(a.name for a in _resolved(u).aliases.all()) == ["champion"]
                    and _resolved(u, alias="challenger").number == 2),
    "version deleted": (lambda m, v1, v2, u: services.version_delete(version=v1, actor=u),
                        lambda u: _resolved(u) is None),
    "version tag set": (lambda m, v1, v2, u: services.version_tag_set(version=v1, actor=u, key="stage", value="new"),
                        lambda u: _tags(_resolved(u)) == {"stage": "new"}),
    "version tag deleted": (lambda m, v1, v2, u: services.version_tag_delete(version=v1, actor=u, key="stage"),
                            lambda u: _tags(_resolved(u)) == {}),
    "version edited": (lambda m, v1, v2, u: services.version_update(version=v1, actor=u, description="retrained"),
                       lambda u: _resolved(u).description == "retrained"),
    "stage moved": (lambda m, v1, v2, u: services.version_transition_stage(version=v1, actor=u, stage="Staging"),
                    lambda u: _resolved(u).stage == "Staging"),
    "version deprecated": (lambda m, v1, v2, u: services.version_deprecate(version=v1, actor=u, reason="old",
                                                                           successor=v2),
                           lambda u: _resolved(u).deprecated and _resolved(u).successor.number == 2),
    "model renamed": (lambda m, v1, v2, u: services.model_rename(model=m, actor=u, new_name="renamed"),
                      lambda u: _resolved(u) is None and _resolved(u, name="renamed").model.name == "renamed"),
    "model deleted": (lambda m, v1, v2, u: services.model_delete(model=m, actor=u),
                      lambda u: _resolved(u) is None),
    "creator renamed": (lambda m, v1, v2, u: (setattr(u, "username", "owner2"), u.save()),
                        lambda u: _resolved(u).creator.username == "owner2"),
}


@pytest.mark.parametrize("change", list(ALIAS_CHANGES))
def test_every_change_to_what_a_version_read_holds_retires_it(change, champion, owner):
    model, v1, v2 = champion
    assert _resolved(owner).number == 1 and _tags(_resolved(owner)) == {"stage": "old"}  # cached now
    assert _resolved(owner, alias="challenger") is None  # a miss is cached too
    assert _resolved(owner, name="renamed") is None
    make, check = ALIAS_CHANGES[change]
    make(model, v1, v2, owner)
    assert check(owner)


MODEL_CHANGES: dict[str, tuple[Callable, Callable]] = {
    "description edited": (lambda m, u: services.model_update(model=m, actor=u, description="new words"),
                           lambda u: selectors.model_get(actor=u, name="cached").description == "new words"),
    "deprecated": (lambda m, u: services.model_deprecate(model=m, actor=u, reason="superseded"),
                   lambda u: selectors.model_get(actor=u, name="cached").deprecated),
    "version registered": (lambda m, u: services.version_create(model=m, actor=u),
                           lambda u: selectors.model_get(actor=u, name="cached").last_version_number == 3),
    "renamed": (lambda m, u: services.model_rename(model=m, actor=u, new_name="renamed"),
                lambda u: selectors.model_get(actor=u, name="renamed").name == "renamed"),
    "deleted": (lambda m, u: services.model_delete(model=m, actor=u), None),
    "created": (lambda m, u: services.model_create(actor=u, name="renamed"),
                lambda u: selectors.model_get(actor=u, name="renamed").name == "renamed"),
    "owner renamed": (lambda m, u: (setattr(u, "username", "owner2"), u.save()),
                      lambda u: selectors.model_get(actor=u, name="cached").owner.username == "owner2"),
}


@pytest.mark.parametrize("change", list(MODEL_CHANGES))
def test_every_change_to_a_model_retires_its_cached_read(change, champion, owner):
    model, _, _ = champion
    assert selectors.model_get(actor=owner, name="cached").description == ""  # cached now
    with pytest.raises(NotFound):
        selectors.model_get(actor=owner, name="renamed")  # a miss, cached too
    make, check = MODEL_CHANGES[change]
    make(model, owner)
    if check is None:
        with pytest.raises(NotFound):
            selectors.model_get(actor=owner, name="cached")
    else:
        assert check(owner)


def test_registering_a_version_retires_nothing_and_the_counter_still_reads_fresh(champion, owner, make_version,
                                                                                django_assert_num_queries):
    """Cached reads leave out what a registration changes (the counter and last-update time load when read)."""
    model, _, _ = champion
    assert _resolved(owner).number == 1
    before = selectors.model_get(actor=owner, name="cached")
    stamp = before.updated_at
    make_version(model)
    with django_assert_num_queries(0):
        assert _resolved(owner).number == 1
        again = selectors.model_get(actor=owner, name="cached")
    with django_assert_num_queries(1):
        assert again.last_version_number == 3
    assert again.updated_at > stamp


def _deprecated_towards(owner, make_version, *, model_level: bool):
    """Model "cached" v1 (champion) deprecated in favour of model "next" (or its v1); both reads cached."""
    model = services.model_create(actor=owner, name="cached")
    v1 = make_version(model)
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    successor_model = services.model_create(actor=owner, name="next")
    successor = make_version(successor_model)
    if model_level:
        services.model_deprecate(model=model, actor=owner, reason="moved", successor=successor_model)
    else:
        services.version_deprecate(version=v1, actor=owner, reason="moved", successor=successor)
    return successor_model, successor


def test_deleting_a_successor_version_retires_the_reads_that_point_at_it(owner, make_version):
    _, successor = _deprecated_towards(owner, make_version, model_level=False)
    assert _resolved(owner).successor.number == 1  # cached, pointing at next v1
    services.version_delete(version=successor, actor=owner)
    assert _resolved(owner).successor is None


def test_deleting_a_successor_model_retires_the_reads_that_point_at_it(owner, make_version):
    successor_model, successor = _deprecated_towards(owner, make_version, model_level=True)
    assert selectors.model_get(actor=owner, name="cached").successor.name == "next"  # cached
    services.version_deprecate(version=_resolved(owner), actor=owner, reason="moved", successor=successor)
    assert _resolved(owner).successor.model.name == "next"  # cached
    services.model_delete(model=successor_model, actor=owner)
    assert selectors.model_get(actor=owner, name="cached").successor is None
    assert _resolved(owner).successor is None


def test_a_renamed_successor_reads_under_its_new_name(owner, make_version):
    successor_model, _ = _deprecated_towards(owner, make_version, model_level=False)
    assert _resolved(owner).successor.model.name == "next"
    services.model_rename(model=successor_model, actor=owner, new_name="renamed-next")
    assert _resolved(owner).successor.model.name == "renamed-next"


def test_a_login_does_not_retire_cached_reads(champion, owner, django_assert_num_queries):
    from django.contrib.auth.models import update_last_login

    assert _resolved(owner).number == 1
    update_last_login(None, owner)  # saves last_login only
    with django_assert_num_queries(0):
        assert _resolved(owner).number == 1


def test_no_read_after_a_commit_returns_the_row_cached_before_it(champion, owner):
    """A reader racing an uncommitted change reads (and caches) the old row; once the change commits, the next
    read returns the new one."""
    model, _, v2 = champion
    changed, release, failures = threading.Event(), threading.Event(), []

    def writer() -> None:
        try:
            with transaction.atomic():
                services.alias_set(model=model, alias="champion", version=v2, actor=owner)
                changed.set()
                if not release.wait(20):
                    raise TimeoutError("never released")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
            changed.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert changed.wait(20)
    try:
        assert _resolved(owner).number == 1  # not committed yet: the old row, cached again now
        assert _resolved(owner).number == 1
    finally:
        release.set()
        thread.join(30)
    assert failures == []
    assert _resolved(owner).number == 2


def test_reads_inside_a_transaction_neither_use_nor_fill_the_cache(champion, owner):
    model, _, v2 = champion
    assert _resolved(owner).number == 1  # cached
    with pytest.raises(RuntimeError), transaction.atomic():
        services.alias_set(model=model, alias="champion", version=v2, actor=owner)
        assert _resolved(owner).number == 2  # its own uncommitted change, not the cached row
        raise RuntimeError("roll back")
    assert _resolved(owner).number == 1  # the rolled-back read was not cached
