"""Prepared queries: compiled once, then the same rows and objects as the ORM, in one query per call."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from registry import selectors, services
from registry.models import ModelVersion, RegisteredModel
from registry.prepared import Prepared

pytestmark = pytest.mark.django_db


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_same_objects_as_the_orm_including_select_related_and_converted_values(
        registered_model, owner, make_version):
    make_version(registered_model, metrics={"auc": 0.91}, params={"depth": "3"}, environment=["numpy==2.0"])
    version = make_version(registered_model, metrics={"auc": 0.93})
    services.alias_set(model=registered_model, actor=owner, alias="champion", version=version)
    prepared = Prepared(lambda name, alias: ModelVersion.objects.select_related("model", "creator")
                        .filter(model__name=name, aliases__name=alias))
    orm = ModelVersion.objects.select_related("model", "creator").get(model__name=registered_model.name,
                                                                      aliases__name="champion")
    with CaptureQueriesContext(connection) as queries:
        got = prepared.one(name=registered_model.name, alias="champion")
    assert len(queries) == 1
    assert _fields(got) == _fields(orm)
    assert got.metrics == {"auc": 0.93}  # JSON decoded
    assert got.created_at == orm.created_at and got.created_at.tzinfo is not None  # datetime converted
    assert _fields(got.model) == _fields(orm.model) and _fields(got.creator) == _fields(orm.creator)
    with CaptureQueriesContext(connection) as queries:
        assert got.model.name == registered_model.name and got.creator.username == owner.username
    assert len(queries) == 0  # the related objects came with the row
    assert got._state.adding is False and got._state.db == "default"


def test_later_calls_bind_new_values_into_the_cached_sql(owner, make_version):
    first = services.model_create(name="prep-a", actor=owner)
    second = services.model_create(name="prep-b", actor=owner)
    prepared = Prepared(lambda name: RegisteredModel.objects.filter(name=name))
    assert [m.pk for m in prepared.all(name="prep-a")] == [first.pk]
    assert [m.pk for m in prepared.all(name="prep-b")] == [second.pk]
    assert prepared.one(name="prep-missing") is None
    assert prepared.one(name="prep-a'; DROP TABLE registry_registeredmodel; --") is None  # bound, never spliced
    assert RegisteredModel.objects.filter(pk=first.pk).exists()


def test_int_parameters_and_constants_compiled_into_the_query(registered_model, make_version):
    make_version(registered_model)
    make_version(registered_model)
    prepared = Prepared(lambda model_id, number: ModelVersion.objects.filter(model_id=model_id, number=number,
                                                                             deprecated=False),
                        model_id=int, number=int)
    assert prepared.one(model_id=registered_model.pk, number=2).number == 2
    assert prepared.one(model_id=registered_model.pk, number=3) is None


def test_annotations_land_on_the_objects(registered_model, make_version):
    from django.db.models import F

    make_version(registered_model)
    prepared = Prepared(lambda name: ModelVersion.objects.filter(model__name=name)
                        .annotate(model_name=F("model__name")))
    assert prepared.one(name=registered_model.name).model_name == registered_model.name


def test_values_list_rows_flat_rows_and_no_parameters(registered_model, make_version):
    first, second = make_version(registered_model), make_version(registered_model)
    rows = Prepared(lambda model_id: ModelVersion.objects.filter(model_id=model_id).order_by("-number")
                    .values_list("number", "created_at"), model_id=int)
    assert rows.all(model_id=registered_model.pk) == [(2, second.created_at), (1, first.created_at)]
    flat = Prepared(lambda name: ModelVersion.objects.filter(model__name=name).order_by("number")
                    .values_list("pk", flat=True))
    assert flat.all(name=registered_model.name) == [first.pk, second.pk]
    newest = Prepared(lambda: ModelVersion.objects.order_by("-pk").values_list("pk", flat=True)[:1])
    assert newest.one() == second.pk
    annotated = Prepared(lambda name: RegisteredModel.objects.filter(name=name).annotate(n=Count("versions"))
                         .values_list("name", "n"))
    with pytest.raises(TypeError, match="annotated values_list"):
        annotated.all(name=registered_model.name)


def test_wrong_value_types_and_names_are_refused():
    prepared = Prepared(lambda name: RegisteredModel.objects.filter(name=name))
    with pytest.raises(TypeError, match="name must be str"):
        prepared.all(name=3)
    with pytest.raises(TypeError, match="expected exactly"):
        prepared.all(name="a", other="b")
    with pytest.raises(TypeError, match="unknown parameters"):
        Prepared(lambda name: RegisteredModel.objects.filter(name=name), other=int)
    with pytest.raises(TypeError, match="only str and int"):
        Prepared(lambda when: RegisteredModel.objects.filter(created_at=when), when=float)


def test_value_dependent_shapes_are_refused_when_first_run():
    values = Prepared(lambda name: RegisteredModel.objects.filter(name=name).values("name"))
    with pytest.raises(TypeError, match="model rows or plain values_list"):
        values.all(name="a")
    prefetching = Prepared(lambda name: RegisteredModel.objects.filter(name=name).prefetch_related("tags"))
    with pytest.raises(TypeError, match="model rows or plain values_list"):
        prefetching.all(name="a")
    transformed = Prepared(lambda name: RegisteredModel.objects.filter(name=name.upper()))
    with pytest.raises(TypeError, match="depends on its values"):
        transformed.all(name="a")
    missing = Prepared(lambda name: RegisteredModel.objects.all())
    with pytest.raises(TypeError, match="depends on its values"):
        missing.all(name="a")


def test_selectors_on_prepared_queries_keep_their_answers(registered_model, owner, outsider, make_version):
    version = make_version(registered_model)
    services.alias_set(model=registered_model, actor=owner, alias="champion", version=version)
    assert selectors.model_get(actor=owner, name=registered_model.name).pk == registered_model.pk
    assert selectors.alias_find_by_name(actor=owner, name=registered_model.name, alias="champion").pk == version.pk
    assert selectors.alias_find_by_name(actor=outsider, name=registered_model.name, alias="champion") is None
    assert selectors.alias_find_by_name(actor=owner, name=registered_model.name, alias="nope") is None
    with pytest.raises(selectors.NotFound):
        selectors.model_get(actor=outsider, name=registered_model.name)


def test_direct_path_keeps_django_checks_and_error_types(registered_model):
    from django.db import DatabaseError, transaction
    from django.db.transaction import TransactionManagementError

    prepared = Prepared(lambda name: RegisteredModel.objects.filter(name=name))
    assert prepared.one(name=registered_model.name).pk == registered_model.pk  # unlogged: the direct path
    with transaction.atomic():
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            prepared.all(name=registered_model.name)
    broken = Prepared(lambda name: RegisteredModel.objects.filter(name=name))
    broken.all(name="x")  # compiled
    real_connection, compiled = next(iter(broken._compiled.items()))
    broken._compiled[real_connection] = type(compiled)(**{**compiled.__dict__, "sql": compiled.sql + " nonsense",
                                                     "qmark_sql": compiled.qmark_sql and compiled.qmark_sql
                                                     + " nonsense"})
    with pytest.raises(DatabaseError):  # Django's exception classes, not the driver's
        broken.all(name="x")


# ------------------------------------------------------------------------------------------- writes


def _row(model, pk) -> dict:
    return _fields(model.objects.get(pk=pk))


@pytest.mark.parametrize("logged", [True, False], ids=["through-django-cursor", "direct"])
def test_insert_stores_what_save_would(registered_model, owner, logged):
    from contextlib import nullcontext

    from registry import prepared

    saved = ModelVersion(model=registered_model, number=1, creator=owner, source_uri="s3://b/k",
                         metrics={"auc": 0.5}, params={"depth": "3"}, environment=["numpy==2.0"])
    saved.save()
    fresh = ModelVersion(model=registered_model, number=2, creator=owner, source_uri="s3://b/k",
                         metrics={"auc": 0.5}, params={"depth": "3"}, environment=["numpy==2.0"])
    with CaptureQueriesContext(connection) if logged else nullcontext() as queries:
        assert prepared.insert(fresh) is fresh
    if logged:
        assert len(queries) == 1 and queries[0]["sql"].startswith("INSERT")
    assert fresh.pk is not None and fresh.pk != saved.pk
    assert fresh._state.adding is False and fresh._state.db == "default"
    assert fresh.created_at is not None and fresh.updated_at is not None  # auto_now_add / auto_now ran
    stored, reference = _row(ModelVersion, fresh.pk), _row(ModelVersion, saved.pk)
    assert stored == {**reference, "id": fresh.pk, "number": 2, "created_at": fresh.created_at,
                      "updated_at": fresh.updated_at}
    assert stored["metrics"] == {"auc": 0.5} and stored["environment"] == ["numpy==2.0"]


@pytest.mark.parametrize("logged", [True, False], ids=["through-django-cursor", "direct"])
def test_update_writes_only_the_named_fields(registered_model, logged):
    from contextlib import nullcontext

    from registry import prepared

    before = RegisteredModel.objects.get(pk=registered_model.pk)
    registered_model.last_version_number = 7
    registered_model.description = "not written"
    with CaptureQueriesContext(connection) if logged else nullcontext() as queries:
        prepared.update(registered_model, ("last_version_number", "updated_at"))
    if logged:
        assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")
    after = RegisteredModel.objects.get(pk=registered_model.pk)
    assert after.last_version_number == 7
    assert after.description == before.description  # not named, not written
    assert after.updated_at > before.updated_at and after.updated_at == registered_model.updated_at  # auto_now


def test_writes_send_the_save_signals(registered_model, owner):
    from django.db.models.signals import post_save, pre_save

    from registry import prepared

    seen = []

    def pre(sender, instance, update_fields, **kwargs):
        seen.append(("pre", sender, instance.pk is None, update_fields))

    def post(sender, instance, created, update_fields, **kwargs):
        seen.append(("post", sender, created, update_fields))

    for signal, receiver in ((pre_save, pre), (post_save, post)):
        signal.connect(receiver, sender=ModelVersion, weak=False)
        signal.connect(receiver, sender=RegisteredModel, weak=False)
    try:
        prepared.insert(ModelVersion(model=registered_model, number=1, creator=owner))
        prepared.update(registered_model, ("last_version_number",))
    finally:
        for signal, receiver in ((pre_save, pre), (post_save, post)):
            signal.disconnect(receiver, sender=ModelVersion)
            signal.disconnect(receiver, sender=RegisteredModel)
    assert seen == [("pre", ModelVersion, True, None), ("post", ModelVersion, True, None),
                    ("pre", RegisteredModel, False, frozenset({"last_version_number"})),
                    ("post", RegisteredModel, False, frozenset({"last_version_number"}))]


def test_write_errors_are_djangos_and_misuse_is_refused(registered_model, owner):
    from django.db import DatabaseError, IntegrityError, transaction

    from registry import prepared

    prepared.insert(ModelVersion(model=registered_model, number=1, creator=owner))
    with pytest.raises(IntegrityError), transaction.atomic():  # (model, number) is unique
        prepared.insert(ModelVersion(model=registered_model, number=1, creator=owner))
    with pytest.raises(TypeError):
        prepared.insert(registered_model)  # already saved
    with pytest.raises(TypeError):
        prepared.update(RegisteredModel(name="unsaved"), ("description",))
    with pytest.raises(TypeError):
        prepared.update(registered_model, ("id",))
    gone = RegisteredModel.objects.get(pk=registered_model.pk)
    RegisteredModel.objects.filter(pk=gone.pk).delete()
    with pytest.raises(DatabaseError):
        prepared.update(gone, ("description",))
