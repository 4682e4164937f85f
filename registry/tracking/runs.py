"""Runs: visibility, lifecycle, and what a training loop logs (params once, metric history, tags, datasets)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F, Min, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from registry import events
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.models import Experiment, LifecycleStage, Run, RunInput, RunMetric, RunParam, RunStatus, RunTag
from registry.tracking.common import clean_float, clean_int, clean_key, clean_text, now_ms, sees_everything
from registry.tracking.experiments import experiments_visible

MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def runs_visible(actor: Any) -> QuerySet[Run]:
    """Runs `actor` may see and log to."""
    if not (actor and actor.is_authenticated):
        return Run.objects.none()
    if sees_everything(actor):
        return Run.objects.all()
    return Run.objects.filter(Q(user_id=actor.pk) | Q(experiment__owner_id=actor.pk))


def run_get(*, actor: Any, run_id: Any) -> Run:
    """Return a visible run by id, or raise NotFound."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    run = runs_visible(actor).select_related("experiment", "user").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run with id={run_id} not found")
    return run


def require_active(run: Run) -> None:
    """Refuse to log to (or upload into) a deleted run."""
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"The run {run.run_id} must be in the 'active' state. Current state is deleted.")


@transaction.atomic
def run_create(*, actor: Any, experiment: Experiment, start_time: Any = None, run_name: str = "",
               tags: dict[str, str] | None = None) -> Run:
    """Start a run in `experiment` on behalf of `actor`."""
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"The experiment {experiment.pk} must be in the 'active' state.")
    tags = {clean_key(k): clean_text(v, "Tag value", 8000) for k, v in (tags or {}).items()}
    run_name = clean_text(run_name or tags.get("mlflow.runName") or "", "Run name", 250, multiline=False)
    run_id = uuid.uuid4().hex
    if not run_name:
        run_name = f"run-{run_id[:8]}"
    tags["mlflow.runName"] = run_name
    run = Run.objects.create(run_id=run_id, experiment=experiment, name=run_name, user=actor,
                             start_time=clean_int(start_time, "start_time", now_ms()))
    RunTag.objects.bulk_create([RunTag(run=run, key=k, value=v) for k, v in tags.items()])
    events.emit("run.created", actor=actor, target=run, data={"experiment": experiment.pk, "name": run_name})
    return run


@transaction.atomic
def run_update(*, actor: Any, run: Run, status: str | None = None, end_time: Any = None, run_name: str | None = None
               ) -> Run:
    """Change a run's status, end time or name."""
    run = Run.objects.select_for_update(no_key=True).get(pk=run.pk)
    data: dict[str, Any] = {}
    if status:
        if status not in RunStatus.values:
            raise InvalidInput(f"Invalid run status {status!r}.")
        data["status"] = {"before": run.status, "after": status}
        run.status = status
    if end_time not in (None, ""):
        run.end_time = clean_int(end_time, "end_time")
    if run_name:
        run.name = clean_text(run_name, "Run name", 250, multiline=False)
        RunTag.objects.update_or_create(run=run, key="mlflow.runName", defaults={"value": run.name})
    run.save()
    if data:
        events.emit("run.updated", actor=actor, target=run, data=data)
    return run


@transaction.atomic
def run_set_lifecycle(*, actor: Any, run: Run, stage: str) -> Run:
    """Soft-delete or restore a run."""
    run.lifecycle_stage = stage
    run.save(update_fields=["lifecycle_stage"])
    events.emit("run.deleted" if stage == LifecycleStage.DELETED else "run.restored", actor=actor, target=run)
    return run


def _param_rows(run: Run, params: Iterable[tuple[Any, Any]]) -> list[RunParam]:
    rows: dict[str, str] = {}
    for key, value in params:
        rows[clean_key(key)] = clean_text(value, f"Param {key!r}", 6000)
    existing = dict(RunParam.objects.filter(run=run, key__in=list(rows)).values_list("key", "value"))
    changed = [{"key": k, "old_value": existing[k], "new_value": v} for k, v in rows.items()
               if k in existing and existing[k] != v]
    if changed:
        key, old, new = changed[0]["key"], changed[0]["old_value"], changed[0]["new_value"]
        raise InvalidInput(f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                           f"value='{old}' for run ID='{run.run_id}'. Attempted logging new value '{new}'.",
                           details={"changed_params": changed})
    return [RunParam(run=run, key=k, value=v) for k, v in rows.items() if k not in existing]


def _metric_row(run: Run, item: dict[str, Any]) -> RunMetric:
    if not isinstance(item, dict):
        raise InvalidInput("Each metric must be an object with key, value, timestamp and step.")
    value = item.get("value")
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    return RunMetric(run=run, key=clean_key(item.get("key")), value=clean_float(value, "Metric value"),
                     timestamp=clean_int(item.get("timestamp"), "timestamp", now_ms()),
                     step=clean_int(item.get("step"), "step", 0),
                     model_id=clean_text(item.get("model_id"), "model_id", 64, multiline=False))


def _same(value: float) -> float | str:
    """A metric value as set members compare it: NaN equals NaN here (a re-logged NaN point is the same point)."""
    return "NaN" if math.isnan(value) else value


def _fresh_points(run: Run, points: list[RunMetric]) -> list[RunMetric]:
    """The points not stored yet: an identical point is stored once (MLflow 3 re-logs run metrics with the logged
    model's id, and an import may copy a run again)."""
    if not points:
        return []
    existing = {(key, ts, step, _same(value)) for key, ts, step, value in RunMetric.objects.filter(
        run=run, key__in={p.key for p in points}, timestamp__in={p.timestamp for p in points}
    ).values_list("key", "timestamp", "step", "value")}
    fresh = []
    for point in points:
        ident = (point.key, point.timestamp, point.step, _same(point.value))
        if ident not in existing:
            existing.add(ident)
            fresh.append(point)
    return fresh


@transaction.atomic
def run_log_batch(*, actor: Any, run: Run, metrics: list[dict[str, Any]] | None = None,
                  params: list[dict[str, Any]] | None = None, tags: list[dict[str, Any]] | None = None) -> None:
    """Log metrics (appended to their history), params (immutable) and tags (replaced) to a run at once."""
    metrics, params, tags = metrics or [], params or [], tags or []
    if not all(isinstance(x, list) for x in (metrics, params, tags)):
        raise InvalidInput("metrics, params and tags must be lists.")
    if len(metrics) > MAX_BATCH_METRICS or len(params) > MAX_BATCH_PARAMS or len(tags) > MAX_BATCH_TAGS:
        raise InvalidInput(f"A batch may hold at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params "
                           f"and {MAX_BATCH_TAGS} tags.")
    run = Run.objects.select_for_update(no_key=True).get(pk=run.pk)
    require_active(run)
    for item in (*params, *tags):
        if not isinstance(item, dict):
            raise InvalidInput("Each param and tag must be an object with key and value.")
    RunParam.objects.bulk_create(_param_rows(run, [(p.get("key"), p.get("value")) for p in params]))
    RunMetric.objects.bulk_create(_fresh_points(run, [_metric_row(run, m) for m in metrics]))
    for item in tags:
        key, value = clean_key(item.get("key")), clean_text(item.get("value"), "Tag value", 8000)
        RunTag.objects.update_or_create(run=run, key=key, defaults={"value": value})
        if key == "mlflow.runName" and value:
            Run.objects.filter(pk=run.pk).update(name=value[:250])


@transaction.atomic
def run_tag_delete(*, actor: Any, run: Run, key: str) -> None:
    """Remove a tag from a run."""
    deleted, _ = RunTag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {key} in run with id {run.run_id}")


@transaction.atomic
def run_log_inputs(*, actor: Any, run: Run, datasets: list[dict[str, Any]] | None = None) -> None:
    """Record the datasets a run consumed (idempotent per name and digest)."""
    require_active(run)
    _inputs_write(run, datasets or [])


def _inputs_write(run: Run, datasets: list[dict[str, Any]]) -> None:
    for item in datasets:
        ds = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(ds, dict) or not ds.get("name"):
            raise InvalidInput("Each dataset input needs a dataset with a name.")
        tags = {clean_key(t.get("key")): clean_text(t.get("value"), "Input tag value", 8000)
                for t in item.get("tags") or [] if isinstance(t, dict)}
        RunInput.objects.update_or_create(
            run=run, name=clean_text(ds["name"], "Dataset name", 500, multiline=False),
            digest=clean_text(ds.get("digest"), "Digest", 128, multiline=False),
            defaults={"source_type": clean_text(ds.get("source_type"), "Source type", 64, multiline=False),
                      "source": clean_text(ds.get("source"), "Dataset source", 100_000),
                      "schema": clean_text(ds.get("schema"), "Schema", 1_000_000),
                      "profile": clean_text(ds.get("profile"), "Profile", 1_000_000), "tags": tags},
        )


@transaction.atomic
def run_import(*, actor: Any, experiment: Experiment, run_id: str, info: dict[str, Any],
               params: list[tuple[Any, Any]], tags: list[tuple[Any, Any]], metrics: list[dict[str, Any]],
               inputs: list[dict[str, Any]], origin: str) -> tuple[Run, bool]:
    """Copy a run from another MLflow server under its own id into `experiment`; return it and whether it is new.

    Idempotent: a second copy adds only what is new (params are immutable, an identical metric point is stored
    once, tags and datasets are replaced) and updates status, end time and lifecycle. The first copy emits
    `run.imported`; later ones are telemetry, as logging is.
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidInput(f"Run id {str(run_id)[:64]!r} is not 1-32 letters, digits, '-' or '_'.")
    if not experiments_visible(actor).filter(pk=experiment.pk).exists():
        raise NotFound(f"No Experiment with id={experiment.pk} exists")
    status = info.get("status") or RunStatus.FINISHED
    if status not in RunStatus.values:
        raise InvalidInput(f"Invalid run status {status!r}.")
    stage = info.get("lifecycle_stage") or LifecycleStage.ACTIVE
    if stage not in LifecycleStage.values:
        raise InvalidInput(f"Invalid lifecycle stage {stage!r}.")
    fields = {"name": clean_text(info.get("run_name") or "", "Run name", 250, multiline=False), "status": status,
              "start_time": clean_int(info.get("start_time"), "start_time"),
              "end_time": clean_int(info.get("end_time"), "end_time"), "lifecycle_stage": stage}
    run = Run.objects.select_for_update(no_key=True).filter(pk=run_id).first()
    created = run is None
    if run is None:
        run = Run.objects.create(run_id=run_id, experiment=experiment, user=actor, **fields)
    elif run.experiment_id != experiment.pk:
        raise AlreadyExists(f"Run {run_id} is already held in another experiment (id={run.experiment_id}).")
    else:
        for name, value in fields.items():
            setattr(run, name, value)
        run.save()
    RunParam.objects.bulk_create(_param_rows(run, params))
    tag_rows = {clean_key(k): clean_text(v, "Tag value", 8000) for k, v in tags}
    RunTag.objects.bulk_create([RunTag(run=run, key=k, value=v) for k, v in tag_rows.items()],
                               update_conflicts=True, unique_fields=["run", "key"], update_fields=["value"])
    points = [_metric_row(run, m) for m in metrics]
    fresh: list[RunMetric] = []
    for start in range(0, len(points), MAX_BATCH_METRICS):  # a long history binds a batch's worth at a time
        fresh += RunMetric.objects.bulk_create(_fresh_points(run, points[start: start + MAX_BATCH_METRICS]))
    _inputs_write(run, inputs)
    if created:
        events.emit("run.imported", actor=actor, target=run, data={
            "experiment": experiment.pk, "name": run.name, "origin": origin[:500], "params": len(params),
            "metric_points": len(fresh), "tags": len(tag_rows), "datasets": len(inputs)})
    return run, created


def metric_history(*, run: Run, key: str) -> QuerySet[RunMetric]:
    """Every logged value of one metric of a run, in step order."""
    return RunMetric.objects.filter(run=run, key=key).order_by("step", "timestamp", "pk")


def latest_metrics(run: Run) -> dict[str, RunMetric]:
    """The latest value of each metric of a run (highest step, then latest timestamp)."""
    latest: dict[str, RunMetric] = {}
    for metric in RunMetric.objects.filter(run=run).order_by("key", "step", "timestamp", "pk"):
        latest[metric.key] = metric
    return latest


def latest_metric_points(run_ids: Iterable[str]) -> QuerySet[RunMetric]:
    """The latest point of each metric of each of `run_ids` (highest step, then latest timestamp, then the last
    logged), in one query, each annotated with `first_logged` (the pk of the metric's first point, MLflow's order)."""
    by_metric = [F("run_id"), F("key")]
    return (RunMetric.objects.filter(run_id__in=list(run_ids))
            .annotate(rank=Window(RowNumber(), partition_by=by_metric,
                                  order_by=[F("step").desc(), F("timestamp").desc(), F("pk").desc()]),
                      first_logged=Window(Min("pk"), partition_by=by_metric))
            .filter(rank=1).order_by("run_id", "first_logged"))
