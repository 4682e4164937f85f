"""Run search as MLflow's runs/search answers it: a filter on latest metrics, params, tags, run attributes and
datasets, an order (nulls last, then start time newest first, then run id), over the experiments a caller names.

The filter text goes through Stratum's own parser (search.parser); here each comparison becomes an ORM lookup with
MLflow's meaning: a comparison on a metric, param or tag matches only runs that have that key; `IS [NOT] NULL` on a
param or tag asks whether the run has the key at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from registry.models import LifecycleStage, Run, RunInput, RunMetric, RunParam, RunTag
from registry.search.compiler import compile_filter, string_lookup
from registry.search.parser import NULL_OPS, FilterError
from registry.tracking.common import parse_experiment_id
from registry.tracking.runs import runs_visible

MAX_RUN_RESULTS = 50_000
DEFAULT_RUN_RESULTS = 1000

_ENTITY_TYPES = {"metric": "metric", "metrics": "metric", "parameter": "parameter", "parameters": "parameter",
                 "param": "parameter", "params": "parameter", "tag": "tag", "tags": "tag", "attribute": "attribute",
                 "attributes": "attribute", "attr": "attribute", "run": "attribute", "dataset": "dataset",
                 "datasets": "dataset"}
_ENTITY_NAMES = "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
# MLflow's searchable run attributes and the column each reads (created is start_time under another name).
_STRING_ATTRIBUTES = {"run_id": "run_id", "run_name": "name", "status": "status", "user_id": "user__username"}
_NUMERIC_ATTRIBUTES = {"start_time": "start_time", "end_time": "end_time", "created": "start_time",
                       "Created": "start_time"}
_METRIC_OPS = {"=", "!=", "<", "<=", ">", ">="}
_TEXT_OPS = {"=", "!=", "LIKE", "ILIKE"}
_ATTRIBUTE_TEXT_OPS = _TEXT_OPS | {"IN", "NOT IN"}
_ORDER = re.compile(r"^\s*(?P<key>.+?)(?:\s+(?P<dir>ASC|DESC))?\s*$", re.IGNORECASE)


def _identifier(field: str) -> tuple[str, str]:
    """Split `type.key` into MLflow's entity type and the key (a bare name is an attribute)."""
    entity, dot, key = field.partition(".")
    if not dot:
        return "attribute", field
    entity = entity.strip("`")
    if entity not in _ENTITY_TYPES:
        raise FilterError(f"Invalid entity type '{entity}'. Valid values are {_ENTITY_NAMES}")
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"'":
        key = key[1:-1]
    return _ENTITY_TYPES[entity], key


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _check_op(op: str, allowed: set[str]) -> None:
    if op not in allowed:
        raise FilterError(f"Invalid comparator '{op}' not one of '{sorted(allowed)}'")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise FilterError(f"Expected a quoted string value for {what} (e.g. 'my-value'). Got value {value}")
    return value


def latest_metric_value(key: str) -> Subquery:
    """The run's latest value of metric `key` (highest step, then latest timestamp, then largest value)."""
    return Subquery(RunMetric.objects.filter(run=OuterRef("pk"), key=key)
                    .order_by("-step", "-timestamp", "-value", "-pk").values("value")[:1])


def _compare(field: str, op: str, value: Any) -> Q:
    """One `field op value` of a run filter, with MLflow's types, comparators and meaning."""
    kind, key = _identifier(field)
    if op in NULL_OPS:
        return _is_null(kind, key, op)
    if kind == "metric":
        _check_op(op, _METRIC_OPS)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FilterError(f"Expected numeric value type for metric. Found {_shown(value)}")
        lookup = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[op]
        later = RunMetric.objects.filter(run=OuterRef("run"), key=key).filter(
            Q(step__gt=OuterRef("step")) | Q(step=OuterRef("step"), timestamp__gt=OuterRef("timestamp"))
            | Q(step=OuterRef("step"), timestamp=OuterRef("timestamp"), value__gt=OuterRef("value")))
        points = RunMetric.objects.filter(run=OuterRef("pk"), key=key).filter(~Exists(later))  # latest point
        match = ~Q(value=value) if op == "!=" else Q(**{f"value__{lookup}": value})
        return Q(Exists(points.filter(match)))
    if kind in ("parameter", "tag"):
        _check_op(op, _TEXT_OPS)
        rows = (RunParam if kind == "parameter" else RunTag).objects.filter(run=OuterRef("pk"), key=key)
        return Q(Exists(rows.filter(string_lookup("value", op, _text(value, kind)))))
    if kind == "dataset":
        if key not in ("name", "digest"):
            raise FilterError(f"Invalid dataset key '{key}' specified. Stratum searches datasets by name or "
                              "digest.")
        _check_op(op, _ATTRIBUTE_TEXT_OPS)
        if not op.endswith("IN"):
            _text(value, "dataset attributes")
        return Q(Exists(RunInput.objects.filter(run=OuterRef("pk")).filter(string_lookup(key, op, value))))
    if key in _NUMERIC_ATTRIBUTES:
        _check_op(op, _METRIC_OPS)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FilterError(f"Expected numeric value type for numeric attribute: {key}. Found {_shown(value)}")
        lookup = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[op]
        q = Q(**{f"{_NUMERIC_ATTRIBUTES[key]}__{lookup}": value})
        return ~q if op == "!=" else q
    if key in _STRING_ATTRIBUTES:
        _check_op(op, _ATTRIBUTE_TEXT_OPS)
        if op.endswith("IN"):
            if key != "run_id":
                raise FilterError("Only ['run_id'] attributes support comparison with a list of quoted string "
                                  "values.")
        else:
            _text(value, "attributes")
        return string_lookup(_STRING_ATTRIBUTES[key], op, value)
    raise FilterError(f"Invalid attribute key '{key}' specified. Valid keys are "
                      f"'{sorted([*_STRING_ATTRIBUTES, *_NUMERIC_ATTRIBUTES])}'")


def _is_null(kind: str, key: str, op: str) -> Q:
    """`params.<key> IS [NOT] NULL` / `tags.<key> ...`: whether the run has that key at all (MLflow allows nothing
    else: a metric, attribute or dataset answers its error)."""
    if kind in ("parameter", "tag"):
        has = Q(Exists((RunParam if kind == "parameter" else RunTag).objects.filter(run=OuterRef("pk"), key=key)))
        return ~has if op == "IS NULL" else has
    if kind == "attribute" and key not in _STRING_ATTRIBUTES and key not in _NUMERIC_ATTRIBUTES:
        raise FilterError(f"Invalid attribute key '{key}' specified. Valid keys are "
                          f"'{sorted([*_STRING_ATTRIBUTES, *_NUMERIC_ATTRIBUTES])}'")
    raise FilterError(f"IS NULL / IS NOT NULL is only supported for tags and params, not for '{kind}' '{key}'")


def _order(qs: QuerySet[Run], order_by: Iterable[str]) -> QuerySet[Run]:
    """Apply MLflow's run order: each clause with nulls last, then start_time DESC (unless named), then run_id."""
    clauses: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for i, clause in enumerate(order_by):
        match = _ORDER.match(clause) if isinstance(clause, str) else None
        if not match:
            raise FilterError(f"Invalid order_by clause '{clause}'. Could not be parsed.")
        kind, key = _identifier(match.group("key"))
        descending = (match.group("dir") or "ASC").upper() == "DESC"
        if (kind, key) in seen:
            raise FilterError(f"`order_by` contains duplicate fields: {list(order_by)}")
        seen.add((kind, key))
        if kind == "attribute":
            column = {**_STRING_ATTRIBUTES, **_NUMERIC_ATTRIBUTES}.get(key)
            if column is None:
                raise FilterError(f"Invalid attribute key '{key}' specified. Valid keys are "
                                  f"'{sorted([*_STRING_ATTRIBUTES, *_NUMERIC_ATTRIBUTES])}'")
            expr: Any = F(column)
        elif kind == "metric":
            qs = qs.annotate(**{f"_order_{i}": latest_metric_value(key)})
            expr = F(f"_order_{i}")
        elif kind in ("parameter", "tag"):
            rows = (RunParam if kind == "parameter" else RunTag).objects.filter(run=OuterRef("pk"), key=key)
            qs = qs.annotate(**{f"_order_{i}": Subquery(rows.values("value")[:1])})
            expr = F(f"_order_{i}")
        else:
            raise FilterError(f"Invalid identifier type '{kind}'")
        clauses.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True))
    if ("attribute", "start_time") not in seen and ("attribute", "created") not in seen:
        clauses.append(F("start_time").desc(nulls_last=True))
    return qs.order_by(*clauses, "run_id")


def run_search(*, actor: Any, experiment_ids: Iterable[Any], filter_string: str | None = None,
               run_view_type: str = "ACTIVE_ONLY", order_by: Iterable[str] = ()) -> QuerySet[Run]:
    """Runs `actor` may see in the named experiments that match `filter_string`, in MLflow's order."""
    ids = [parse_experiment_id(raw) for raw in experiment_ids]
    qs = runs_visible(actor).filter(experiment_id__in=ids).filter(compile_filter(filter_string, _compare))
    if run_view_type in ("ACTIVE_ONLY", "", None):
        qs = qs.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    elif run_view_type == "DELETED_ONLY":
        qs = qs.filter(lifecycle_stage=LifecycleStage.DELETED)
    return _order(qs, order_by).select_related("experiment", "user")
