"""Reads for the experiment and run pages: lists with counts, a run table with chosen columns, a run's whole record,
and run comparison rows, each in a fixed number of queries whatever the number of runs, metrics or points.

Who sees what is the tracking API's rule (experiments_visible, runs_visible, run_search), plus one widening "as for
the models they belong to": a person who may see a model may open the run any of its versions was registered from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from registry import permissions
from registry.compare.selectors import Comparison, higher_is_better
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.models import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    ModelVersion,
    Run,
    RunInput,
    RunMetric,
    RunParam,
    RunTag,
    TrackedArtifact,
)
from registry.tracking.experiments import experiment_get, experiments_visible
from registry.tracking.run_search import latest_metric_value, run_search
from registry.tracking.runs import latest_metric_points, runs_visible

KEYS_FROM_RUNS = 200  # the newest runs whose metric and param keys the column picker offers
MAX_COLUMNS = 8  # chosen metric columns and param columns each
MAX_POINTS_PER_CHART = 2000  # a longer history is thinned evenly for the chart (first and last point kept)
MAX_COMPARED_RUNS = 5
MIN_COMPARED_RUNS = 2
# Files whose bytes may be a pickle: never served to a browser, since nothing scans a run's own files.
UNSERVED_FORMATS = frozenset({"pickle", "joblib", "compressed"})


# --------------------------------------------------------------------------------------------- visibility


def runs_readable(actor: Any) -> QuerySet[Run]:
    """Runs `actor` may open: those the tracking API shows them, and those a version of a visible model came from."""
    if not (actor and actor.is_authenticated):
        return Run.objects.none()
    from_versions = (ModelVersion.objects.filter(model__in=permissions.visible_models(actor))
                     .exclude(run_id="").values("run_id"))
    return Run.objects.filter(Q(pk__in=runs_visible(actor).values("pk")) | Q(pk__in=from_versions))


# ---------------------------------------------------------------------------------------------- experiments


def experiment_list(*, actor: Any) -> QuerySet[Experiment]:
    """Active experiments `actor` may see, most recently active first, each with `run_count` (active runs the actor
    sees) and `last_activity_ms` (latest run start or end, in ms since the epoch; None without runs), in one query."""
    runs = runs_visible(actor).filter(experiment=OuterRef("pk"), lifecycle_stage=LifecycleStage.ACTIVE)
    count = runs.order_by().values("experiment").annotate(n=Count("pk")).values("n")
    last = runs.order_by().values("experiment").annotate(
        t=Max(Greatest(Coalesce("start_time", Value(0)), Coalesce("end_time", Value(0))))).values("t")
    return (experiments_visible(actor).filter(lifecycle_stage=LifecycleStage.ACTIVE)
            .annotate(run_count=Coalesce(Subquery(count, output_field=IntegerField()), 0),
                      last_activity_ms=Subquery(last))
            .select_related("owner")
            .order_by(Coalesce("last_activity_ms", Value(-1)).desc(), "pk"))


def experiment_keys(*, actor: Any, experiment: Experiment) -> dict[str, list[str]]:
    """The metric and param keys the actor's KEYS_FROM_RUNS most recently started active runs of `experiment`
    logged (two queries): the column choices. Bounded so the page's cost does not grow with the experiment's
    history; a key only older runs logged can still be filtered and sorted on."""
    runs = (runs_visible(actor).filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE)
            .order_by(F("start_time").desc(nulls_last=True), "run_id").values("pk")[:KEYS_FROM_RUNS])
    metrics = RunMetric.objects.filter(run__in=runs).order_by("key").values_list("key", flat=True).distinct()
    params = RunParam.objects.filter(run__in=runs).order_by("key").values_list("key", flat=True).distinct()
    return {"metrics": list(metrics[:500]), "params": list(params[:500])}


@dataclass
class RunTable:
    """What an experiment page's run table shows: the runs (with `metric_values` and `param_values` lists in column
    order), the chosen columns, and the filter and order that chose them."""

    runs: QuerySet[Run]
    metric_columns: list[str]
    param_columns: list[str]
    filter_string: str = ""
    order: str = ""
    keys: dict[str, list[str]] = field(default_factory=dict)


def pick_columns(requested: Iterable[str], available: list[str]) -> list[str]:
    """The requested column keys that exist (in the order asked, at most MAX_COLUMNS); the first ones otherwise."""
    wanted = [key for key in dict.fromkeys(k.strip() for k in requested) if key in set(available)]
    return (wanted or available)[:MAX_COLUMNS]


def run_table(*, actor: Any, experiment: Experiment, filter_string: str = "", order: str = "",
              metric_keys: Iterable[str] = (), param_keys: Iterable[str] = ()) -> RunTable:
    """Active runs of `experiment` that match `filter_string` (MLflow's run filter language) in `order` (e.g.
    `metrics.auc DESC`), each annotated with the latest value of the chosen metrics and the chosen params: one query
    per page of runs, however many columns. Raises FilterError (a 400) for a filter or order that does not parse."""
    keys = experiment_keys(actor=actor, experiment=experiment)
    metric_columns = pick_columns(metric_keys, keys["metrics"])
    param_columns = pick_columns(param_keys, keys["params"])
    qs = run_search(actor=actor, experiment_ids=[experiment.pk], filter_string=filter_string or None,
                    order_by=[order] if order.strip() else [])
    annotations: dict[str, Any] = {}
    for i, key in enumerate(metric_columns):
        annotations[f"col_metric_{i}"] = latest_metric_value(key)
    for i, key in enumerate(param_columns):
        annotations[f"col_param_{i}"] = Subquery(
            RunParam.objects.filter(run=OuterRef("pk"), key=key).values("value")[:1])
    return RunTable(runs=qs.annotate(**annotations), metric_columns=metric_columns, param_columns=param_columns,
                    filter_string=filter_string, order=order, keys=keys)


def _number(value: Any) -> float | None:
    """A metric cell: None for a run without the metric (the column reads NULL back as NaN) and for NaN itself."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def run_table_rows(table: RunTable, runs: Iterable[Run]) -> list[Run]:
    """Give each run of an evaluated page its column values as lists (templates cannot index by name)."""
    rows = list(runs)
    for run in rows:
        # NaN is stored as NULL, so a missing metric and a NaN look alike here: both show "—".
        run.metric_values = [_number(getattr(run, f"col_metric_{i}")) for i in range(len(table.metric_columns))]
        run.param_values = [getattr(run, f"col_param_{i}") for i in range(len(table.param_columns))]
    return rows


# ------------------------------------------------------------------------------------------------------ a run


@dataclass
class RunRecord:
    """Everything a run page shows, read up front."""

    run: Run
    experiment_visible: bool
    params: list[RunParam]
    tags: list[RunTag]
    system_tags: list[RunTag]
    inputs: list[RunInput]
    latest: list[dict[str, Any]]
    history: dict[str, list[tuple[int, float]]]
    artifacts: list[TrackedArtifact]
    logged_models: list[LoggedModel]
    versions: list[ModelVersion]


def run_get(*, actor: Any, run_id: str) -> Run:
    """Return a run `actor` may open, or raise NotFound (an invisible run is indistinguishable from none)."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > 32 or "\x00" in run_id:
        raise NotFound("No such run.")
    run = runs_readable(actor).select_related("experiment", "user").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such run.")
    return run


def _thin(points: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """Keep at most `limit` points, evenly spaced, the first and the last always."""
    if len(points) <= limit:
        return points
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]


def run_record(*, actor: Any, run: Run) -> RunRecord:
    """Read a run's params, tags, datasets, metric histories, files, logged models and the versions registered from
    it (those of models `actor` may see), in a fixed number of queries."""
    history: dict[str, list[tuple[int, float]]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for key, step, value, timestamp in (RunMetric.objects.filter(run=run).order_by("key", "step", "timestamp", "pk")
                                        .values_list("key", "step", "value", "timestamp")):
        value = None if value is None else float(value)
        latest[key] = {"key": key, "value": value, "step": step, "timestamp": timestamp,
                       "points": latest.get(key, {}).get("points", 0) + 1}
        if value is not None and math.isfinite(value):
            history.setdefault(key, []).append((step, value))
    tags = list(run.tags.all())
    inputs = list(run.inputs.all())
    for item in inputs:
        item.context = (item.tags or {}).get("mlflow.data.context", "")  # training, validation, test …
    return RunRecord(
        run=run,
        experiment_visible=experiments_visible(actor).filter(pk=run.experiment_id).exists(),
        params=list(run.params.all()),
        tags=[t for t in tags if not t.key.startswith("mlflow.")],
        system_tags=[t for t in tags if t.key.startswith("mlflow.")],
        inputs=inputs,
        latest=[latest[k] for k in sorted(latest)],
        history={k: _thin(v, MAX_POINTS_PER_CHART) for k, v in sorted(history.items())},
        artifacts=list(TrackedArtifact.objects.filter(run=run).order_by("path")),
        logged_models=list(LoggedModel.objects.filter(source_run=run).annotate(files=Count("artifacts"))
                           .order_by("created_at", "pk")),
        versions=list(run_versions(actor=actor, run_ids=[run.run_id])),
    )


def run_versions(*, actor: Any, run_ids: Sequence[str]) -> QuerySet[ModelVersion]:
    """Versions of models `actor` may see registered from any of `run_ids`, newest first."""
    return (ModelVersion.objects.filter(run_id__in=[r for r in run_ids if r],
                                        model__in=permissions.visible_models(actor))
            .select_related("model").order_by("model__name", "-number"))


def run_artifact_get(*, run: Run, path: str) -> TrackedArtifact:
    """Return the file `path` (already validated) of `run` with its blob, or raise NotFound; Forbidden for a file
    that may be a pickle: nothing scans a run's own files, and an unscanned pickle is served by no route."""
    row = TrackedArtifact.objects.select_related("blob").filter(run=run, path=path).first()
    if row is None:
        raise NotFound(f"No file {path!r} in this run.")
    if row.format in UNSERVED_FORMATS:
        raise Forbidden(f"{path} may be a pickle and has not been scanned, so it is not served here. Register a "
                        "version from this run: its files are scanned and served once clean.")
    return row


# --------------------------------------------------------------------------------------------- comparison


def parse_run_selection(raw: str | None) -> list[str]:
    """Parse 'id1,id2' (2-5 run ids) into run ids, or raise InvalidInput with what to write instead."""
    items = list(dict.fromkeys(part.strip() for part in (raw or "")[:2000].split(",") if part.strip()))
    if len(items) < MIN_COMPARED_RUNS:
        raise InvalidInput(f"Pick {MIN_COMPARED_RUNS} to {MAX_COMPARED_RUNS} runs to compare, e.g. "
                           "runs=<run id>,<run id>.")
    if len(items) > MAX_COMPARED_RUNS:
        raise InvalidInput(f"Compare at most {MAX_COMPARED_RUNS} runs at a time; {len(items)} were given.")
    for item in items:
        if not item.isalnum() or len(item) > 32:
            raise InvalidInput(f"{item[:40]!r} is not a run id.")
    return items


def _rows(keys: Iterable[str], values: dict[str, dict[str, Any]], ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        row = [values[r].get(key) for r in ids]
        rows.append({"name": key, "values": row, "changed": len({repr(v) for v in row}) > 1})
    return rows


def run_comparison(*, actor: Any, selection: str | None) -> Comparison:
    """Compare 2-5 runs `actor` may open: latest metrics (deltas to the first, best marked), params, datasets and
    run facts, as compare's Comparison rows so the version comparison's table and chart render them. An invisible
    run is NotFound."""
    ids = parse_run_selection(selection)
    found = {r.pk: r for r in runs_readable(actor).select_related("experiment", "user").filter(pk__in=ids)}
    missing = [r for r in ids if r not in found]
    if missing:
        raise NotFound(f"No such run: {missing[0]}.")
    runs = [found[r] for r in ids]
    metrics: dict[str, dict[str, Any]] = {r: {} for r in ids}
    for point in latest_metric_points(ids):
        metrics[point.run_id][point.key] = point.value
    params: dict[str, dict[str, Any]] = {r: {} for r in ids}
    for run_id, key, value in RunParam.objects.filter(run_id__in=ids).values_list("run_id", "key", "value"):
        params[run_id][key] = value
    datasets: dict[str, dict[str, Any]] = {r: {} for r in ids}
    for run_id, name, digest in RunInput.objects.filter(run_id__in=ids).values_list("run_id", "name", "digest"):
        datasets[run_id][name] = digest or "(recorded)"
    metric_rows = []
    for key in sorted({k for m in metrics.values() for k in m}):
        values = [v if isinstance(v, float) and math.isfinite(v) else None for v in (metrics[r].get(key) for r in ids)]
        higher = higher_is_better(key)
        present = [v for v in values if v is not None]
        best_value = (max(present) if higher else min(present)) if present else None
        base = values[0]
        metric_rows.append({
            "name": key, "values": values, "higher_is_better": higher,
            "deltas": [None if v is None or base is None else v - base for v in values],
            "best": [v is not None and v == best_value and len(present) > 1 for v in values],
            "changed": len({repr(v) for v in values}) > 1,
        })
    columns = [{"id": r.pk, "ref": r.pk, "label": r.name or r.pk[:8], "run_id": r.pk, "experiment": r.experiment.name,
                "status": r.status, "user": r.user.get_username() if r.user else None} for r in runs]
    facts = {r.pk: {"experiment": r.experiment.name, "status": r.status, "user": columns[i]["user"],
                    "start time (ms)": r.start_time, "end time (ms)": r.end_time} for i, r in enumerate(runs)}
    return Comparison(
        columns=columns,
        metrics=metric_rows,
        params=_rows(sorted({k for p in params.values() for k in p}), params, ids),
        datasets=_rows(sorted({k for d in datasets.values() for k in d}), datasets, ids),
        overview=_rows(["experiment", "status", "user", "start time (ms)", "end time (ms)"], facts, ids),
    )


def experiment_for_page(*, actor: Any, experiment_id: Any) -> Experiment:
    """Return a visible experiment by id for its page (NotFound otherwise, also for a malformed id)."""
    try:
        return experiment_get(actor=actor, experiment_id=experiment_id)
    except InvalidInput:
        raise NotFound("No such experiment.")
