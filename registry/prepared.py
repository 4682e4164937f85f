"""Hot fixed-shape queries and writes compiled to SQL once per connection instead of once per request.

Building the SQL of a select_related lookup (some fifty columns over three tables) cost about 1.7 ms on this
kind of machine, more than running it: the alias resolution that serving clients and MLflow's get-by-alias hit
spent most of its time there. A `Prepared` query is written as an ordinary queryset whose lookups take
sentinel values; it is compiled the first time it runs on a connection, the sentinels' positions among the SQL
parameters are remembered, and each later call binds the caller's values there and builds model instances the
way Django's ModelIterable does (same converters, same select_related population).

Only for queries whose SQL does not depend on the values: equality lookups on non-null scalars. `__in` lists,
None (IS NULL) and prefetch_related are refused when the query is declared.
"""

from __future__ import annotations

import inspect
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, connections, router
from django.db.models import Model, QuerySet, signals
from django.db.models.query import FlatValuesListIterable, ModelIterable, ValuesListIterable, get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Two sentinel sets: a query is compiled with each, and a parameter is a position holding set A's value in the
# first SQL and set B's in the second (constants hold the same value in both; any other difference, or a
# different SQL text, means the shape depends on the values and the query is refused). Ints stay small and
# positive so that range checks (PositiveSmallIntegerField) keep the lookup.
_SENTINELS = {str: ("\x1fprepared-a:{}\x1f", "\x1fprepared-b:{}\x1f"), int: (31_000, 32_000)}


_FORMAT_QMARK = re.compile(r"(?<!%)%s")  # as Django's SQLite backend converts "format" to "qmark" style


def _base(value: Any) -> type:
    """str or int for their subclasses (psycopg wraps ints as Int4/Int8), else the type itself."""
    kind = type(value)
    return int if issubclass(kind, int) and kind is not bool else str if issubclass(kind, str) else kind


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # (None, the constant compiled in) or (parameter name, None, or the backend's wrapper type for its value)
    slots: tuple[tuple[str | None, Any], ...]
    model: type[Model] | None  # None for values_list() rows
    init_list: tuple[str, ...]
    start: int
    end: int
    populators: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    annotations: tuple[tuple[str, int], ...]
    flat: bool = False
    for_update: bool = False
    qmark_sql: str | None = None  # SQLite: the SQL already in qmark style


def _direct(connection: Any, qmark_sql: str | None) -> bool:
    """True when `qmark_sql` may go straight to the DB-API connection, after the checks Django's cursor wrapper
    makes. (When queries are logged, as in DEBUG and in tests that count them, they go through Django's cursor.)"""
    if qmark_sql is None or connection.queries_logged or connection.execute_wrappers:
        return False
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    return True


def _sqlite_qmark(connection: Any, sql: str) -> str | None:
    """On SQLite, `sql` in qmark style, converted once: Django's SQLite cursor rewrites %s to ? with a regular
    expression on every execute (about 40 us for a fifty-column select on this machine)."""
    return _FORMAT_QMARK.sub("?", sql).replace("%%", "%") if connection.vendor == "sqlite" else None


def _fetch(connection: Any, compiled: _Compiled, params: list[Any]) -> list[tuple[Any, ...]]:
    if _direct(connection, compiled.qmark_sql):
        with connection.wrap_database_errors:
            return connection.connection.execute(compiled.qmark_sql, params).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        return cursor.fetchall()


class Prepared(Generic[M]):
    """A queryset factory `build(**values)` run once per connection with sentinel values, then reused: it
    returns model instances, or tuples (values_list) or single values (values_list(flat=True)).

    `types` names the Python type of each parameter (str unless given); values passed later must have it."""

    def __init__(self, build: Callable[..., QuerySet[M]], **types: type) -> None:
        self._build = build
        self._names = tuple(inspect.signature(build).parameters)
        self._types = {name: types.get(name, str) for name in self._names}
        unknown = set(types) - set(self._names)
        if unknown:
            raise TypeError(f"types for unknown parameters: {sorted(unknown)}")
        for name, kind in self._types.items():
            if kind not in _SENTINELS:
                raise TypeError(f"parameter {name!r}: only str and int parameters can be prepared, not "
                                f"{kind.__name__}")
        self._sentinels = self._sentinel_set(0)
        self._compiled: weakref.WeakKeyDictionary[Any, _Compiled] = weakref.WeakKeyDictionary()

    def _sentinel_set(self, which: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for index, name in enumerate(self._names):
            pattern = _SENTINELS[self._types[name]][which]
            out[name] = pattern.format(name) if isinstance(pattern, str) else pattern + index
        return out

    def _queryset(self, values: dict[str, Any], alias: str) -> QuerySet[M]:
        qs = self._build(**values).using(alias)
        rows = qs._iterable_class in (ValuesListIterable, FlatValuesListIterable)
        if (qs._prefetch_related_lookups or qs._known_related_objects
                or not (qs._iterable_class is ModelIterable or rows)
                or (rows and (qs.query.extra_select or qs.query.annotation_select))):
            raise TypeError("a prepared query returns model rows or plain values_list() rows (no prefetch_related, "
                            "values(), annotated values_list() or related managers)")
        return qs

    def _compile(self, connection: Any, alias: str) -> _Compiled:
        set_a, set_b = self._sentinel_set(0), self._sentinel_set(1)
        qs = self._queryset(set_a, alias)
        compiler = qs.query.get_compiler(using=alias, connection=connection)
        sql, params = compiler.as_sql()
        sql_b, params_b = self._queryset(set_b, alias).query.get_compiler(using=alias, connection=connection).as_sql()
        names = {(_base(v), v): name for name, v in set_a.items()}
        slots: list[tuple[str | None, Any]] = []
        for a, b in zip(params, params_b, strict=False):
            name = names.get((_base(a), a))
            if name is not None and _base(b) is _base(set_b[name]) and b == set_b[name]:
                # Keep the backend's wrapper (psycopg's Int4 on PostgreSQL) around the caller's value.
                slots.append((name, type(a) if type(a) is not _base(a) else None))
            elif type(a) is type(b) and a == b:
                slots.append((None, a))
            else:
                name = None
                break
        missing = set(self._names) - {name for name, _ in slots if name}
        if sql != sql_b or len(params) != len(params_b) or len(slots) != len(params) or missing:
            raise TypeError("the SQL of this query depends on its values, or a value did not reach it unchanged; a "
                            "prepared query takes equality lookups on plain values")
        select, klass_info = compiler.select, compiler.klass_info
        fields = [s[0] for s in select[0:compiler.col_count]]
        converters = tuple((pos, tuple(convs), expr) for pos, (convs, expr) in compiler.get_converters(fields).items())
        if qs._iterable_class is not ModelIterable:  # values_list(): tuples, or the first column when flat
            compiled = _Compiled(sql=sql, slots=tuple(slots), model=None, init_list=(), start=0, end=0, populators=(),
                                 converters=converters, annotations=(),
                                 flat=qs._iterable_class is FlatValuesListIterable)
        else:
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            compiled = _Compiled(
                sql=sql, slots=tuple(slots), model=klass_info["model"],
                init_list=tuple(f[0].target.attname for f in select[start:end]), start=start, end=end,
                populators=tuple(get_related_populators(klass_info, select, alias)), converters=converters,
                annotations=tuple((compiler.annotation_col_map or {}).items()),
            )
        if qs.query.select_for_update:
            compiled = replace(compiled, for_update=True)
        compiled = replace(compiled, qmark_sql=_sqlite_qmark(connection, sql))
        self._compiled[connection] = compiled
        return compiled

    def all(self, **values: Any) -> list[Any]:
        """Run the query with `values` bound: the model instances (or values_list rows) in the query's order."""
        if set(values) != set(self._names):
            raise TypeError(f"expected exactly {list(self._names)}, got {sorted(values)}")
        for name, value in values.items():
            if _base(value) is not self._types[name]:
                raise TypeError(f"{name} must be {self._types[name].__name__}, not {type(value).__name__}")
        alias = router.db_for_read(self._model_hint())
        connection = connections[alias]
        compiled = self._compiled.get(connection) or self._compile(connection, alias)
        if compiled.for_update and connection.get_autocommit():  # as Django checks when it compiles
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = [constant if name is None else values[name] if constant is None else constant(values[name])
                  for name, constant in compiled.slots]
        rows = _fetch(connection, compiled, params)
        out: list[Any] = []
        for raw in rows:
            row = list(raw)
            for pos, convs, expression in compiled.converters:
                value = row[pos]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[pos] = value
            if compiled.model is None:
                out.append(row[0] if compiled.flat else tuple(row))
                continue
            obj = compiled.model.from_db(alias, compiled.init_list, row[compiled.start:compiled.end])
            for populator in compiled.populators:
                populator.populate(row, obj)
            for attr, pos in compiled.annotations:
                setattr(obj, attr, row[pos])
            out.append(obj)
        return out

    def one(self, **values: Any) -> Any:
        """The first row, or None (declare the query with [:1] when more could match)."""
        rows = self.all(**values)
        return rows[0] if rows else None

    def _model_hint(self) -> type[Model]:
        model = getattr(self, "_model", None)
        if model is None:
            model = self._model = self._build(**self._sentinels).model  # the model, for the router
        return model


# ------------------------------------------------------------------------------------------- writes
#
# The hot writes (a version's row, its model's counter, the audit trail's entry) went through Model.save(), which
# builds the same INSERT or UPDATE again on every call. Measured in a loop on this kind of machine: an INSERT of
# a version 0.24 ms through save() against 0.09-0.14 ms compiled once; the counter's UPDATE 0.13-0.17 ms against
# 0.01 ms. In a whole MLflow create-version request (in-process, SQLite) the three writes took 1.2 ms of 3.4 ms
# through save(); with these the request took 2.0 ms. Same semantics as save() for the cases they accept:
# fields' pre_save (auto_now, auto_now_add), get_db_prep_save, the pre_save/post_save signals (sent when anything
# listens), the primary key set on the instance, _state updated, Django's exception classes.


@dataclass(frozen=True)
class _Write:
    sql: str
    fields: tuple[Any, ...]  # the fields whose values are bound, in order (then the pk, for an UPDATE)
    qmark_sql: str | None
    insert: bool
    returning: bool = False  # an INSERT ending RETURNING the primary key (else the driver's last insert id)


_writes: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _Write]] = weakref.WeakKeyDictionary()


def _simple(model: type[Model]) -> None:
    meta = model._meta
    if meta.parents or meta.order_with_respect_to or len(meta.pk_fields) != 1 or meta.auto_field is not meta.pk \
            or any(f.generated or f.has_db_default() for f in meta.local_concrete_fields):
        raise TypeError(f"{meta.label}: prepared writes take plain single-table models with an auto primary key")


def _execute(connection: Any, write: _Write, params: list[Any]) -> Any:
    """Run `write`; return the new primary key (INSERT) or the number of rows changed (UPDATE)."""
    if _direct(connection, write.qmark_sql):
        with connection.wrap_database_errors:
            cursor = connection.connection.execute(write.qmark_sql, params)
            return cursor.lastrowid if write.insert else cursor.rowcount
    with connection.cursor() as cursor:
        cursor.execute(write.sql, params)
        if not write.insert:
            return cursor.rowcount
        if write.returning:
            return cursor.fetchone()[0]
        meta = write.fields[0].model._meta
        return connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)


def insert(obj: M) -> M:
    """Save a new instance (no primary key yet) with its model's INSERT compiled once per connection."""
    model = type(obj)
    meta = model._meta
    if not obj._state.adding or obj.pk is not None:
        raise TypeError("insert() saves new instances only")
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    obj._prepare_related_fields_for_save(operation_name="save")
    if signals.pre_save.has_listeners(model):
        signals.pre_save.send(sender=model, instance=obj, raw=False, using=alias, update_fields=None)
    cache = _writes.setdefault(connection, {})
    write = cache.get((model, "insert"))
    if write is None:
        _simple(model)
        fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)
        query = InsertQuery(model)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using=alias, connection=connection)
        returning = bool(connection.features.can_return_columns_from_insert) and connection.vendor != "sqlite"
        compiler.returning_fields = [meta.pk] if returning else None
        statements = compiler.as_sql()
        if len(statements) != 1 or len(statements[0][1]) != len(fields):
            raise TypeError(f"{meta.label}: the INSERT does not bind one parameter per field")
        sql = statements[0][0]
        write = cache[(model, "insert")] = _Write(sql, fields, _sqlite_qmark(connection, sql), True, returning)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in write.fields]
    pk = _execute(connection, write, params)
    setattr(obj, meta.pk.attname, pk)
    obj._state.adding = False
    obj._state.db = alias
    if signals.post_save.has_listeners(model):
        signals.post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False, using=alias)
    return obj


def update(obj: M, fields: tuple[str, ...]) -> None:
    """save(update_fields=fields) with the UPDATE compiled once per connection (auto_now fields must be listed
    to change, as with save()); raises DatabaseError when the row is gone, as save() does."""
    model = type(obj)
    meta = model._meta
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    if obj.pk is None or obj._state.adding:
        raise TypeError("update() saves rows that exist")
    frozen = frozenset(fields)
    if signals.pre_save.has_listeners(model):
        signals.pre_save.send(sender=model, instance=obj, raw=False, using=alias, update_fields=frozen)
    cache = _writes.setdefault(connection, {})
    write = cache.get((model, fields))
    if write is None:
        _simple(model)
        targets = tuple(meta.get_field(name) for name in fields)
        if any(not f.concrete or f.primary_key for f in targets):
            raise TypeError("update() sets concrete non-key fields")
        qs = model._base_manager.using(alias).filter(pk=obj.pk)
        query = qs.query.chain(klass=UpdateQuery)
        query.add_update_fields([(f, None, getattr(obj, f.attname)) for f in targets])
        sql, params = query.get_compiler(using=alias, connection=connection).as_sql()
        if len(params) != len(targets) + 1:
            raise TypeError(f"{meta.label}: the UPDATE does not bind one parameter per field")
        write = cache[(model, fields)] = _Write(sql, targets, _sqlite_qmark(connection, sql), False)
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in write.fields]
    params.append(meta.pk.get_db_prep_value(obj.pk, connection))
    if not _execute(connection, write, params):
        raise DatabaseError("Save with update_fields did not affect any rows.")
    obj._state.db = alias
    if signals.post_save.has_listeners(model):
        signals.post_save.send(sender=model, instance=obj, created=False, update_fields=frozen, raw=False, using=alias)
