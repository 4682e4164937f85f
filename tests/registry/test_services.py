"""Service-layer promises: every write validates, persists, emits one domain event, and leaves nothing on failure."""

from __future__ import annotations

import hashlib
import os
import pickle
from datetime import timedelta

import pytest
from django.utils import timezone

from registry import access, gates, selectors, services, validation
from registry.artifacts.storage import spool_dir
from registry.authentication import user_for_token
from registry.errors import AlreadyExists, Forbidden, InvalidInput, InvalidState, NotFound
from registry.models import (
    AccessToken,
    Alias,
    Artifact,
    Blob,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Role,
    Stage,
)
from tests.conftest import spooled

pytestmark = pytest.mark.django_db


def only(captured, action):
    """Return the single captured event named `action`."""
    matching = [e for e in captured if e.action == action]
    assert len(matching) == 1, [e.action for e in captured]
    return matching[0]


def spool_files():
    return os.listdir(spool_dir())


# ------------------------------------------------------------------------------------------- model_create


def test_model_create_persists_and_emits_created_event(owner, captured_events):
    model = services.model_create(actor=owner, name="fraud", description="Flags fraud.", tags={"team": "risk"})

    stored = RegisteredModel.objects.get(pk=model.pk)
    assert (stored.name, stored.description, stored.owner_id) == ("fraud", "Flags fraud.", owner.pk)
    assert dict(ModelTag.objects.filter(model=model).values_list("key", "value")) == {"team": "risk"}
    event = only(captured_events, "registered_model.created")
    assert event.actor == owner
    assert event.target_label == "fraud"
    assert event.target_id == model.pk
    assert event.data == {"name": "fraud", "description": "Flags fraud.", "tags": {"team": "risk"}}


def test_model_create_accepts_tags_as_key_value_list(owner):
    model = services.model_create(actor=owner, name="m", tags=[{"key": "a", "value": 1}, {"key": "b"}])
    assert dict(model.tags.values_list("key", "value")) == {"a": "1", "b": ""}


def test_model_create_duplicate_name_raises_already_exists_and_writes_nothing(
    registered_model, make_user, captured_events
):
    other = make_user("other")
    with pytest.raises(AlreadyExists, match="churn"):
        services.model_create(actor=other, name="churn", tags={"x": "y"})
    assert RegisteredModel.objects.count() == 1
    assert RegisteredModel.objects.get().owner_id == registered_model.owner_id
    assert not ModelTag.objects.filter(key="x").exists()
    assert captured_events == []


@pytest.mark.parametrize(
    "name",
    ["", "   ", " churn", "churn ", "churn\n", "-churn", ".hidden", "a/b", "a\tb", "a" * 257, None, 42],
)
def test_model_create_rejects_invalid_names_and_writes_nothing(owner, captured_events, name):
    with pytest.raises(InvalidInput):
        services.model_create(actor=owner, name=name)
    assert RegisteredModel.objects.count() == 0
    assert captured_events == []


@pytest.mark.parametrize("name", ["a", "_private", "churn v2.1-final", "a" * 256])
def test_model_create_accepts_valid_names(owner, name):
    assert services.model_create(actor=owner, name=name).name == name


def test_model_create_with_invalid_tag_writes_nothing(owner, captured_events):
    with pytest.raises(InvalidInput):
        services.model_create(actor=owner, name="m", tags={"bad\x00key": "v"})
    assert not RegisteredModel.objects.exists()
    assert captured_events == []


def test_model_create_requires_a_signed_in_user():
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(Forbidden):
        services.model_create(actor=AnonymousUser(), name="m")
    assert not RegisteredModel.objects.exists()


# --------------------------------------------------------------------------------- model edits and events


def test_model_rename_emits_before_after(registered_model, owner, captured_events):
    services.model_rename(model=registered_model, actor=owner, new_name="churn-v2")
    assert RegisteredModel.objects.get(pk=registered_model.pk).name == "churn-v2"
    event = only(captured_events, "registered_model.renamed")
    assert event.data == {"before": "churn", "after": "churn-v2"}
    assert event.target_label == "churn-v2"


def test_model_rename_to_taken_name_raises_and_keeps_old_name(registered_model, owner, captured_events):
    services.model_create(actor=owner, name="fraud")
    captured_events.clear()
    with pytest.raises(AlreadyExists):
        services.model_rename(model=registered_model, actor=owner, new_name="fraud")
    assert RegisteredModel.objects.get(pk=registered_model.pk).name == "churn"
    assert captured_events == []


def test_model_rename_rejects_invalid_name(registered_model, owner):
    with pytest.raises(InvalidInput):
        services.model_rename(model=registered_model, actor=owner, new_name="../etc")
    assert RegisteredModel.objects.get(pk=registered_model.pk).name == "churn"


def test_model_update_emits_description_before_after(registered_model, owner, captured_events):
    services.model_update(model=registered_model, actor=owner, description="New text")
    assert RegisteredModel.objects.get(pk=registered_model.pk).description == "New text"
    event = only(captured_events, "registered_model.updated")
    assert event.data == {"description": {"before": "Predicts **churn**.", "after": "New text"}}


def test_model_delete_emits_event_and_cascades(registered_model, owner, make_version, captured_events):
    version = make_version(registered_model)
    services.alias_set(model=registered_model, alias="champion", version=version, actor=owner)
    services.model_delete(model=registered_model, actor=owner)
    assert not RegisteredModel.objects.exists()
    assert not ModelVersion.objects.exists()
    assert not Alias.objects.exists()
    event = only(captured_events, "registered_model.deleted")
    assert event.data == {"name": "churn", "versions": 1}


def test_model_delete_refused_while_a_version_is_in_production(
    registered_model, owner, make_version, captured_events
):
    version = make_version(registered_model)
    services.version_transition_stage(version=version, actor=owner, stage="Production")
    with pytest.raises(InvalidState, match="Production"):
        services.model_delete(model=registered_model, actor=owner)
    assert RegisteredModel.objects.filter(pk=registered_model.pk).exists()
    assert not [e for e in captured_events if e.action == "registered_model.deleted"]


def test_model_tag_set_then_replace_then_delete(registered_model, owner, captured_events):
    services.model_tag_set(model=registered_model, actor=owner, key="team", value="ml")
    services.model_tag_set(model=registered_model, actor=owner, key="team", value="risk")
    sets = [e.data for e in captured_events if e.action == "registered_model.tag_set"]
    assert sets == [
        {"key": "team", "before": None, "after": "ml"},
        {"key": "team", "before": "ml", "after": "risk"},
    ]
    assert list(registered_model.tags.values_list("key", "value")) == [("team", "risk")]

    services.model_tag_delete(model=registered_model, actor=owner, key="team")
    assert not registered_model.tags.exists()
    assert only(captured_events, "registered_model.tag_deleted").data == {"key": "team"}
    with pytest.raises(NotFound):
        services.model_tag_delete(model=registered_model, actor=owner, key="team")


@pytest.mark.parametrize("key", ["", "k\x00", "k\n", "x" * 251])
def test_tag_rejects_invalid_keys(registered_model, owner, key):
    with pytest.raises(InvalidInput):
        services.model_tag_set(model=registered_model, actor=owner, key=key, value="v")
    assert not registered_model.tags.exists()


def test_model_deprecate_and_undeprecate(registered_model, owner, make_version, captured_events):
    successor = services.model_create(actor=owner, name="churn2")
    services.model_deprecate(model=registered_model, actor=owner, reason="  superseded  ", successor=successor)
    stored = RegisteredModel.objects.get(pk=registered_model.pk)
    assert (stored.deprecated, stored.deprecation_reason, stored.successor_id) == (True, "superseded", successor.pk)
    assert only(captured_events, "registered_model.deprecated").data == {
        "reason": "superseded", "successor": "churn2"
    }
    with pytest.raises(InvalidState):
        make_version(stored)
    assert not stored.versions.exists()

    services.model_undeprecate(model=stored, actor=owner)
    stored.refresh_from_db()
    assert (stored.deprecated, stored.deprecation_reason, stored.successor_id) == (False, "", None)
    assert only(captured_events, "registered_model.undeprecated").data == {}


def test_model_deprecate_requires_reason_and_not_self_successor(registered_model, owner):
    with pytest.raises(InvalidInput):
        services.model_deprecate(model=registered_model, actor=owner, reason="   ")
    with pytest.raises(InvalidInput):
        services.model_deprecate(model=registered_model, actor=owner, reason="x", successor=registered_model)
    assert not RegisteredModel.objects.get(pk=registered_model.pk).deprecated


# ---------------------------------------------------------------------------------------------- versions


def test_version_numbers_are_sequential_and_never_reused(registered_model, owner, make_version, captured_events):
    assert [make_version(registered_model).number for _ in range(3)] == [1, 2, 3]
    services.version_delete(version=ModelVersion.objects.get(model=registered_model, number=3), actor=owner)
    assert only(captured_events, "model_version.deleted").data == {"model": "churn", "version": 3}
    assert make_version(registered_model).number == 4
    services.version_delete(version=ModelVersion.objects.get(model=registered_model, number=2), actor=owner)
    assert make_version(registered_model).number == 5
    assert sorted(registered_model.versions.values_list("number", flat=True)) == [1, 4, 5]


def test_version_numbers_are_per_model(registered_model, owner, make_version):
    other = services.model_create(actor=owner, name="fraud")
    make_version(registered_model)
    make_version(registered_model)
    assert make_version(other).number == 1


def test_version_delete_refused_in_production(registered_model, owner, make_version):
    version = make_version(registered_model)
    services.version_transition_stage(version=version, actor=owner, stage="Production")
    with pytest.raises(InvalidState):
        services.version_delete(version=version, actor=owner)
    assert ModelVersion.objects.filter(pk=version.pk).exists()


def test_version_created_event_payload(registered_model, owner, make_version, captured_events):
    data = b"\x80\x04K\x01."
    version = make_version(registered_model, files={"model.pkl": data}, semver="1.0.0", run_id="r1",
                           source_uri="s3://bucket/run")
    event = only(captured_events, "model_version.created")
    assert event.target_label == "churn v1"
    assert event.target_id == version.pk
    assert event.actor == owner
    assert event.data == {
        "model": "churn", "version": 1, "semver": "1.0.0", "source_uri": "s3://bucket/run", "run_id": "r1",
        "files": [{"path": "model.pkl", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}],
    }


def test_version_provenance_fields_are_validated_and_stored(registered_model, make_version):
    signature = {"inputs": [{"name": "age", "type": "long"}], "outputs": [{"name": "p", "type": "double"}]}
    version = make_version(
        registered_model,
        metrics={"auc": 1, "loss": "0.25"},
        params={"n_estimators": 100, "lr": 0.1, "balanced": True, "seed": None},
        datasets=[
            {"name": "train.csv", "uri": "s3://b/train.csv", "digest": "abc123", "role": "train"},
            {"name": "holdout", "role": "test"},
            {"name": "val-set", "role": "validation"},
            {"name": "defaulted"},
        ],
        environment="numpy==2.4.6\n# pinned by lockfile\n\n  scikit-learn==1.9.1  \n",
        signature=signature,
        code_repository="https://git.example.com/ml/churn",
        code_commit="0123456789abcdef0123456789abcdef01234567",
        description="first",
        tags={"owner": "ml"},
    )
    stored = ModelVersion.objects.get(pk=version.pk)
    assert stored.metrics == {"auc": 1.0, "loss": 0.25}
    assert all(type(v) is float for v in stored.metrics.values())
    assert stored.params == {"n_estimators": "100", "lr": "0.1", "balanced": "True", "seed": ""}
    assert stored.environment == ["numpy==2.4.6", "scikit-learn==1.9.1"]
    assert stored.signature == signature
    assert stored.code_repository == "https://git.example.com/ml/churn"
    assert stored.code_commit == "0123456789abcdef0123456789abcdef01234567"
    assert stored.creator_id == registered_model.owner_id
    assert stored.stage == Stage.NONE
    assert dict(stored.tags.values_list("key", "value")) == {"owner": "ml"}
    assert sorted(stored.datasets.values_list("name", "uri", "digest", "role")) == [
        ("defaulted", "", "", "train"),
        ("holdout", "", "", "test"),
        ("train.csv", "s3://b/train.csv", "abc123", "train"),
        ("val-set", "", "", "validation"),
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": {"auc": float("nan")}},
        {"metrics": {"auc": float("inf")}},
        {"metrics": {"auc": True}},
        {"metrics": {"auc": "high"}},
        {"metrics": {"a__b": 1.0}},
        {"metrics": [1, 2]},
        {"params": {"p": {"nested": 1}}},
        {"params": {"a__b": "1"}},
        {"datasets": [{"name": "d", "role": "production"}]},
        {"datasets": [{"uri": "s3://x"}]},
        {"environment": [1, 2]},
        {"signature": {"inputs": "age:long"}},
        {"signature": {"unexpected": []}},
        {"run_id": "x" * 65},
        {"code_commit": "c" * 65},
    ],
    ids=lambda f: repr(f)[:40],
)
def test_version_create_rejects_invalid_provenance_and_writes_nothing(
    registered_model, make_version, captured_events, fields
):
    with pytest.raises(InvalidInput):
        make_version(registered_model, files={"model.pkl": b"data"}, **fields)
    registered_model.refresh_from_db()
    assert registered_model.last_version_number == 0
    assert not ModelVersion.objects.exists()
    assert not Blob.objects.exists()
    assert spool_files() == []
    assert captured_events == []


def test_version_files_stored_with_hash_size_and_format_sniffed_from_content(registered_model, make_version):
    pickled = pickle.dumps({"weights": [1, 2, 3]}, protocol=4)
    assert pickled.startswith(b"\x80\x04")
    files = {"model.txt": pickled, "conf/config.json": b'{"a": 1}', "README": b"plain words\n"}
    version = make_version(registered_model, files=files)
    rows = {a.path: a for a in Artifact.objects.filter(version=version)}
    assert set(rows) == set(files)
    for path, data in files.items():
        assert rows[path].blob_id == hashlib.sha256(data).hexdigest()
        assert rows[path].size == len(data) == rows[path].blob.size
    assert rows["model.txt"].format == "pickle"
    assert rows["conf/config.json"].format == "json"
    assert rows["README"].format == "text"
    assert spool_files() == []


def test_version_create_rejects_bad_or_duplicate_paths_and_discards_spools(registered_model, owner):
    for files in ([("../evil", spooled(b"x"))], [("a.bin", spooled(b"1")), ("a.bin", spooled(b"2"))]):
        with pytest.raises(InvalidInput):
            services.version_create(model=registered_model, actor=owner, files=files)
    assert spool_files() == []
    assert not ModelVersion.objects.exists()


def test_version_update_emits_diff_and_checks_semver(registered_model, owner, make_version, captured_events):
    make_version(registered_model, semver="1.0.0")
    v2 = make_version(registered_model, description="old")
    services.version_update(version=v2, actor=owner, description="new", metrics={"auc": 0.5})
    event = only(captured_events, "model_version.updated")
    assert event.data == {
        "description": {"before": "old", "after": "new"},
        "metrics": {"before": {}, "after": {"auc": 0.5}},
    }
    with pytest.raises(AlreadyExists):
        services.version_update(version=v2, actor=owner, semver="1.0.0")
    with pytest.raises(InvalidInput, match="Unknown field"):
        services.version_update(version=v2, actor=owner, stage="Production")
    v2.refresh_from_db()
    assert (v2.semver, v2.stage) == ("", Stage.NONE)


# ------------------------------------------------------------------------------------------------ semver


@pytest.mark.parametrize(
    "value", ["1", "1.0", "01.0.0", "1.00.0", "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "a.b.c", "1.0.0\n", 1]
)
def test_semver_invalid_is_rejected(registered_model, make_version, value):
    with pytest.raises(InvalidInput):
        make_version(registered_model, semver=value)
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "value", ["0.0.0", "1.2.3", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha-1+build.5", "2.0.0+sha.abc"]
)
def test_semver_valid_is_stored(registered_model, make_version, value):
    assert ModelVersion.objects.get(pk=make_version(registered_model, semver=value).pk).semver == value


def test_semver_unique_per_model_but_shared_across_models(registered_model, owner, make_version):
    make_version(registered_model, semver="1.0.0")
    with pytest.raises(AlreadyExists, match=r"1\.0\.0"):
        make_version(registered_model, semver="1.0.0")
    registered_model.refresh_from_db()
    assert registered_model.last_version_number == 1
    other = services.model_create(actor=owner, name="fraud")
    assert make_version(other, semver="1.0.0").semver == "1.0.0"
    # Blank semvers never collide.
    make_version(registered_model)
    make_version(registered_model)


def test_semver_bump_on_create_follows_the_highest_semver_numerically(registered_model, make_version):
    assert make_version(registered_model, semver_bump="patch").semver == "0.0.1"
    make_version(registered_model, semver="1.2.3")
    make_version(registered_model, semver="1.10.0")
    make_version(registered_model, semver="1.9.9")
    make_version(registered_model)  # versions without a semver are ignored
    assert make_version(registered_model, semver_bump="minor").semver == "1.11.0"
    assert make_version(registered_model, semver_bump="patch").semver == "1.11.1"
    assert make_version(registered_model, semver_bump="major").semver == "2.0.0"


def test_semver_bump_ignores_other_models(registered_model, owner, make_version):
    other = services.model_create(actor=owner, name="fraud")
    make_version(other, semver="5.0.0")
    assert make_version(registered_model, semver_bump="major").semver == "1.0.0"


@pytest.mark.parametrize("fields", [{"semver": "1.0.0", "semver_bump": "patch"}, {"semver_bump": "build"}])
def test_semver_bump_rejects_bad_combinations(registered_model, make_version, fields):
    with pytest.raises(InvalidInput):
        make_version(registered_model, **fields)
    registered_model.refresh_from_db()
    assert registered_model.last_version_number == 0


@pytest.mark.parametrize(
    ("current", "part", "expected"),
    [
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "patch", "1.2.4"),
        ("0.9.9+build.7", "minor", "0.10.0"),
        (None, "major", "1.0.0"),
        ("", "minor", "0.1.0"),
        (None, "patch", "0.0.1"),
    ],
)
def test_semver_next(current, part, expected):
    assert validation.semver_next(current, part) == expected


@pytest.mark.parametrize(("current", "part"), [("1.2.3", "build"), ("1.2", "patch"), ("banana", "major")])
def test_semver_next_rejects_bad_input(current, part):
    with pytest.raises(InvalidInput):
        validation.semver_next(current, part)


# ------------------------------------------------------------------------------------------------ stages


def test_stage_transition_is_case_insensitive_and_emits_event(registered_model, owner, make_version, captured_events):
    version = make_version(registered_model)
    services.version_transition_stage(version=version, actor=owner, stage="staging")
    assert ModelVersion.objects.get(pk=version.pk).stage == "Staging"
    event = only(captured_events, "model_version.stage_transitioned")
    assert event.data == {
        "from_stage": "None", "to_stage": "Staging", "archive_existing_versions": False, "archived_versions": [],
    }


def test_stage_transition_archives_existing_versions(registered_model, owner, make_version, captured_events):
    v1, v2, v3, v4 = (make_version(registered_model) for _ in range(4))
    for v in (v1, v2):
        services.version_transition_stage(version=v, actor=owner, stage="Production")
    services.version_transition_stage(version=v4, actor=owner, stage="Staging")
    # Without archiving, two versions may share Production.
    assert set(registered_model.versions.filter(stage="Production").values_list("number", flat=True)) == {1, 2}
    captured_events.clear()

    services.version_transition_stage(version=v3, actor=owner, stage="Production", archive_existing_versions=True)
    stages = dict(registered_model.versions.values_list("number", "stage"))
    assert stages == {1: "Archived", 2: "Archived", 3: "Production", 4: "Staging"}
    event = only(captured_events, "model_version.stage_transitioned")
    assert event.data["from_stage"] == "None"
    assert event.data["to_stage"] == "Production"
    assert event.data["archive_existing_versions"] is True
    assert sorted(event.data["archived_versions"]) == [1, 2]


def test_archive_existing_only_touches_the_same_model(registered_model, owner, make_version):
    other = services.model_create(actor=owner, name="fraud")
    foreign = make_version(other)
    services.version_transition_stage(version=foreign, actor=owner, stage="Production")
    mine = make_version(registered_model)
    services.version_transition_stage(version=mine, actor=owner, stage="Production", archive_existing_versions=True)
    assert ModelVersion.objects.get(pk=foreign.pk).stage == "Production"


@pytest.mark.parametrize("stage", ["Prod", "", None, "Deleted", 1])
def test_unknown_stage_is_refused(registered_model, owner, make_version, captured_events, stage):
    version = make_version(registered_model)
    captured_events.clear()
    with pytest.raises(InvalidInput):
        services.version_transition_stage(version=version, actor=owner, stage=stage)
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.NONE
    assert captured_events == []


def test_gate_can_refuse_production_and_nothing_changes(registered_model, owner, make_version, captured_events):
    v1, v2 = make_version(registered_model), make_version(registered_model)
    services.version_transition_stage(version=v1, actor=owner, stage="Production")
    captured_events.clear()
    calls = []

    def gate(*, model, kind, target, version, actor):
        calls.append((model.pk, kind, target, version.pk, actor.pk))
        if kind == "stage" and target == "Production":
            raise Forbidden("Production needs an approved review.")

    gates.register_gate(gate)
    try:
        with pytest.raises(Forbidden, match="approved review"):
            services.version_transition_stage(
                version=v2, actor=owner, stage="production", archive_existing_versions=True
            )
        assert dict(registered_model.versions.values_list("number", "stage")) == {1: "Production", 2: "None"}
        assert captured_events == []
        assert calls == [(registered_model.pk, "stage", "Production", v2.pk, owner.pk)]
        # Other targets pass through the same gate.
        services.version_transition_stage(version=v2, actor=owner, stage="Staging")
        services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
        assert calls[-1] == (registered_model.pk, "alias", "champion", v2.pk, owner.pk)
    finally:
        gates.unregister_gate(gate)
    assert ModelVersion.objects.get(pk=v2.pk).stage == "Staging"


def test_gate_can_refuse_alias_move(registered_model, owner, make_version):
    v1, v2 = make_version(registered_model), make_version(registered_model)
    services.alias_set(model=registered_model, alias="prod", version=v1, actor=owner)

    def gate(*, model, kind, target, version, actor):
        if kind == "alias" and target == "prod":
            raise Forbidden("prod is protected")

    gates.register_gate(gate)
    try:
        with pytest.raises(Forbidden):
            services.alias_set(model=registered_model, alias="prod", version=v2, actor=owner)
    finally:
        gates.unregister_gate(gate)
    assert selectors.alias_resolve(model=registered_model, alias="prod").pk == v1.pk


# ----------------------------------------------------------------------------------------------- aliases


def test_alias_set_move_delete_with_events(registered_model, owner, make_version, captured_events):
    v1, v2 = make_version(registered_model), make_version(registered_model)
    services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)

    assert Alias.objects.filter(model=registered_model, name="champion").count() == 1
    assert selectors.version_resolve(model=registered_model, ref="champion").pk == v2.pk
    sets = [e for e in captured_events if e.action == "model_version_alias.set"]
    assert [e.data for e in sets] == [
        {"alias": "champion", "from_version": None, "to_version": 1},
        {"alias": "champion", "from_version": 1, "to_version": 2},
    ]
    assert sets[1].target_label == "churn v2"

    services.alias_delete(model=registered_model, alias="champion", actor=owner)
    assert not Alias.objects.exists()
    assert only(captured_events, "model_version_alias.deleted").data == {"alias": "champion", "from_version": 2}
    with pytest.raises(NotFound):
        services.alias_delete(model=registered_model, alias="champion", actor=owner)
    with pytest.raises(NotFound):
        selectors.version_resolve(model=registered_model, ref="champion")


@pytest.mark.parametrize(
    "alias", ["latest", "LATEST", "Latest", "v3", "V12", "v0", "", "has space", "a/b", "x" * 256, "champion\n"]
)
def test_alias_reserved_or_invalid_names_refused(registered_model, owner, make_version, alias):
    version = make_version(registered_model)
    with pytest.raises(InvalidInput):
        services.alias_set(model=registered_model, alias=alias, version=version, actor=owner)
    assert not Alias.objects.exists()


@pytest.mark.parametrize("alias", ["v", "vx", "v1a", "version3", "latest-good", "Champion_2"])
def test_alias_names_close_to_reserved_are_allowed(registered_model, owner, make_version, alias):
    version = make_version(registered_model)
    services.alias_set(model=registered_model, alias=alias, version=version, actor=owner)
    assert selectors.alias_resolve(model=registered_model, alias=alias).pk == version.pk


def test_alias_same_name_on_two_models_is_independent(registered_model, owner, make_version):
    other = services.model_create(actor=owner, name="fraud")
    mine, theirs = make_version(registered_model), make_version(other)
    services.alias_set(model=registered_model, alias="champion", version=mine, actor=owner)
    services.alias_set(model=other, alias="champion", version=theirs, actor=owner)
    assert selectors.alias_resolve(model=registered_model, alias="champion").pk == mine.pk
    assert selectors.alias_resolve(model=other, alias="champion").pk == theirs.pk


def test_alias_refuses_version_of_another_model(registered_model, owner, make_version, captured_events):
    other = services.model_create(actor=owner, name="fraud")
    foreign = make_version(other)
    captured_events.clear()
    with pytest.raises(InvalidInput):
        services.alias_set(model=registered_model, alias="champion", version=foreign, actor=owner)
    assert not Alias.objects.exists()
    assert captured_events == []


# --------------------------------------------------------------------------------------------- roles


def test_role_grant_and_revoke_emit_events(registered_model, owner, outsider, captured_events):
    access.role_grant(model=registered_model, actor=owner, user=outsider, role=Role.VIEWER)
    access.role_grant(model=registered_model, actor=owner, user=outsider, role=Role.MAINTAINER)
    grants = [e.data for e in captured_events if e.action == "model_role.granted"]
    assert grants == [{"grantee": "outsider", "role": "viewer"}, {"grantee": "outsider", "role": "maintainer"}]
    assert list(registered_model.roles.values_list("user_id", "role")) == [(outsider.pk, Role.MAINTAINER)]

    access.role_revoke(model=registered_model, actor=owner, user=outsider)
    assert not registered_model.roles.exists()
    assert only(captured_events, "model_role.revoked").data == {"grantee": "outsider"}
    with pytest.raises(NotFound):
        access.role_revoke(model=registered_model, actor=owner, user=outsider)


def test_role_grant_rejects_unknown_role_and_ambiguous_grantee(registered_model, owner, outsider):
    with pytest.raises(InvalidInput):
        access.role_grant(model=registered_model, actor=owner, user=outsider, role=99)
    with pytest.raises(InvalidInput):
        access.role_grant(model=registered_model, actor=owner, role=Role.VIEWER)
    assert not registered_model.roles.exists()


# -------------------------------------------------------------------------------------------- tokens


def test_token_create_returns_raw_once_and_stores_only_hash(owner, captured_events):
    token, raw = access.token_create(user=owner, actor=owner, name="ci")
    assert raw.startswith("stm_")
    assert len(raw) > 40
    stored = AccessToken.objects.get(pk=token.pk)
    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(f"stm_{stored.prefix}_")
    for field in AccessToken._meta.concrete_fields:
        assert raw not in str(getattr(stored, field.attname))
    event = only(captured_events, "access_token.created")
    assert event.data["prefix"] == stored.prefix
    assert raw not in repr(event.data)
    assert raw.split("_", 2)[2] not in repr(event.data)


def test_user_for_token_until_revoked(owner, captured_events):
    token, raw = access.token_create(user=owner, actor=owner, name="ci")
    assert user_for_token(raw) == owner
    assert AccessToken.objects.get(pk=token.pk).last_used_at is not None
    access.token_revoke(token=token, actor=owner)
    assert AccessToken.objects.get(pk=token.pk).revoked_at is not None
    assert user_for_token(raw) is None
    assert only(captured_events, "access_token.revoked").data == {"user": "owner", "prefix": token.prefix}


def test_user_for_token_until_expired(owner, settings):
    settings.STRATUM_TOKEN_CACHE_SECONDS = 0  # the expiry is rewritten behind the ORM's back below
    token, raw = access.token_create(user=owner, actor=owner, name="ci",
                                       expires_at=timezone.now() + timedelta(hours=1))
    assert user_for_token(raw) == owner
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert user_for_token(raw) is None


def test_checked_tokens_are_cached_until_changed(owner, settings, django_assert_num_queries):
    settings.STRATUM_TOKEN_CACHE_SECONDS = 60
    token, raw = access.token_create(user=owner, actor=owner, name="hot")
    assert user_for_token(raw) == owner
    with django_assert_num_queries(0):
        first, second = user_for_token(raw), user_for_token(raw)
    assert first == owner and first is not second  # a fresh user object per request
    owner.is_active = False
    owner.save()  # deactivation clears the cache at once in this process
    assert user_for_token(raw) is None
    owner.is_active = True
    owner.save()
    assert user_for_token(raw) == owner
    access.token_revoke(token=token, actor=owner)
    assert user_for_token(raw) is None


def test_user_for_token_rejects_tampered_and_malformed(owner):
    _, raw = access.token_create(user=owner, actor=owner, name="ci")
    assert user_for_token(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert user_for_token(raw.replace("stm_", "xyz_", 1)) is None
    assert user_for_token("stm_") is None
    assert user_for_token("") is None
    owner.is_active = False
    owner.save()
    assert user_for_token(raw) is None


def test_token_rules(owner, outsider):
    with pytest.raises(Forbidden):
        access.token_create(user=outsider, actor=owner, name="for someone else")
    with pytest.raises(InvalidInput):
        access.token_create(user=owner, actor=owner, name="  ")
    with pytest.raises(InvalidInput):
        access.token_create(user=owner, actor=owner, name="x", expires_at=timezone.now() - timedelta(minutes=1))
    assert not AccessToken.objects.exists()
    token, raw = access.token_create(user=owner, actor=owner, name="mine")
    with pytest.raises(Forbidden):
        access.token_revoke(token=token, actor=outsider)
    assert user_for_token(raw) == owner
