"""Experiment tracking behind the MLflow-compatible API: experiments, runs, logged models and their artifacts.

Writes here are training telemetry, not registry state: experiment, run and logged-model lifecycle changes
emit domain events, but individual params, metrics and tags do not (a training loop logs thousands).
Visibility: staff see everything; others see the experiments they own plus the shared Default (id 0), and
the runs and logged models they created or that live in their experiments. Writes need the same.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from registry import events, permissions
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import SpooledUpload, blob_put
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.models import (
    Artifact,
    Blob,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    ModelVersion,
    Run,
    RunInput,
    RunMetric,
    RunParam,
    RunStatus,
    RunTag,
    TrackedArtifact,
)
from registry.search.compiler import compile_filter, string_lookup
from registry.search.parser import FilterError

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
REGISTRY_ROOT = "registry"  # mlflow-artifacts:/registry/<model pk>/<version number>/... serves a version's files
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def _staff(actor) -> bool:
    return bool(actor and actor.is_authenticated and (actor.is_staff or actor.is_superuser))


# --------------------------------------------------------------------------------------------- experiments


def default_experiment() -> Experiment:
    """Return the shared Default experiment (id 0), creating it on first use."""
    exp = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
    if exp is None:
        try:
            with transaction.atomic():
                exp = Experiment.objects.create(pk=DEFAULT_EXPERIMENT_ID, name=DEFAULT_EXPERIMENT_NAME)
        except IntegrityError:
            exp = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    return exp


def experiments_visible(actor) -> QuerySet[Experiment]:
    """Experiments `actor` may see and log to."""
    if not (actor and actor.is_authenticated):
        return Experiment.objects.none()
    if _staff(actor):
        return Experiment.objects.all()
    return Experiment.objects.filter(Q(owner_id=actor.pk) | Q(pk=DEFAULT_EXPERIMENT_ID))


def _experiment_id(raw: Any) -> int:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid experiment id {raw!r}.")
    if value < 0:
        raise InvalidInput(f"Invalid experiment id {raw!r}.")
    return value


def experiment_get(*, actor, experiment_id: Any) -> Experiment:
    """Return a visible experiment by id, or raise NotFound."""
    exp_id = _experiment_id(experiment_id)
    if exp_id == DEFAULT_EXPERIMENT_ID:
        default_experiment()
    exp = experiments_visible(actor).filter(pk=exp_id).first()
    if exp is None:
        raise NotFound(f"No Experiment with id={exp_id} exists")
    return exp


def experiment_get_by_name(*, actor, name: str) -> Experiment:
    """Return a visible experiment by name, or raise NotFound."""
    if name == DEFAULT_EXPERIMENT_NAME:
        default_experiment()
    exp = experiments_visible(actor).filter(name=name).first()
    if exp is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return exp


def experiment_search(*, actor, filter_string: str | None = None, view_type: str = "ACTIVE_ONLY"
                      ) -> QuerySet[Experiment]:
    """Visible experiments matching a name filter (name = / LIKE / ILIKE), oldest first."""
    default_experiment()

    def cmp(field_name: str, op: str, value: Any) -> Q:
        if field_name.lower() == "name":
            return string_lookup("name", op, value)
        raise FilterError(f"Unknown field {field_name!r} in experiment filter; use name.")

    qs = experiments_visible(actor).filter(compile_filter(filter_string, cmp))
    if view_type in ("ACTIVE_ONLY", "", None):
        qs = qs.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    elif view_type == "DELETED_ONLY":
        qs = qs.filter(lifecycle_stage=LifecycleStage.DELETED)
    return qs.order_by("pk")


@transaction.atomic
def experiment_create(*, actor, name: str, artifact_location: str = "", tags: dict[str, str] | None = None
                      ) -> Experiment:
    """Create an experiment owned by `actor`; its artifacts always live in Stratum's store."""
    if not permissions.can_create_model(actor):
        raise InvalidInput("You must be signed in to create an experiment.")
    if not isinstance(name, str) or not name.strip() or len(name) > 500:
        raise InvalidInput("Experiment name must be a non-empty string of at most 500 characters.")
    if artifact_location:
        raise InvalidInput("Stratum keeps experiment artifacts in its own store; artifact_location is not accepted.")
    if Experiment.objects.filter(name=name).exists():
        raise AlreadyExists(f"Experiment(name={name}) already exists.")
    try:
        with transaction.atomic():
            exp = Experiment.objects.create(name=name, owner=actor, tags=dict(tags or {}))
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={name}) already exists.")
    events.emit("experiment.created", actor=actor, target=exp, data={"name": name})
    return exp


@transaction.atomic
def experiment_update(*, actor, experiment: Experiment, new_name: str | None = None,
                      lifecycle_stage: str | None = None) -> Experiment:
    """Rename, delete (soft) or restore an experiment."""
    if experiment.pk == DEFAULT_EXPERIMENT_ID and (new_name or lifecycle_stage == LifecycleStage.DELETED):
        raise InvalidInput("The Default experiment cannot be renamed or deleted.")
    data: dict[str, Any] = {}
    if new_name:
        if Experiment.objects.filter(name=new_name).exclude(pk=experiment.pk).exists():
            raise AlreadyExists(f"Experiment(name={new_name}) already exists.")
        data["name"] = {"before": experiment.name, "after": new_name}
        experiment.name = new_name
    if lifecycle_stage:
        data["lifecycle_stage"] = {"before": experiment.lifecycle_stage, "after": lifecycle_stage}
        experiment.lifecycle_stage = lifecycle_stage
    experiment.save()
    events.emit("experiment.updated", actor=actor, target=experiment, data=data)
    return experiment


@transaction.atomic
def experiment_tag_set(*, actor, experiment: Experiment, key: str, value: str) -> None:
    """Set a tag on an experiment."""
    exp = Experiment.objects.select_for_update().get(pk=experiment.pk)
    exp.tags = {**exp.tags, _key(key): _text(value, "Tag value", 5000)}
    exp.save(update_fields=["tags", "updated_at"])


# ------------------------------------------------------------------------------------------------- runs


def runs_visible(actor) -> QuerySet[Run]:
    """Runs `actor` may see and log to."""
    if not (actor and actor.is_authenticated):
        return Run.objects.none()
    if _staff(actor):
        return Run.objects.all()
    return Run.objects.filter(Q(user_id=actor.pk) | Q(experiment__owner_id=actor.pk))


def run_get(*, actor, run_id: Any) -> Run:
    """Return a visible run by id, or raise NotFound."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    run = runs_visible(actor).select_related("experiment", "user").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run '{run_id}' not found")
    return run


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > 250 or any(ord(c) < 32 for c in key):
        raise InvalidInput(f"Invalid key {key!r}: 1-250 printable characters.")
    return key


def _text(value: Any, label: str, limit: int) -> str:
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    if len(value) > limit:
        raise InvalidInput(f"{label} is longer than {limit} characters.")
    return value


def _int(value: Any, label: str, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label} must be an integer, not {value!r}.")


def _float(value: Any, label: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{label} must be a number.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label} must be a number, not {value!r}.")


def _require_active(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"The run {run.run_id} must be in the 'active' state. Current state is deleted.")


@transaction.atomic
def run_create(*, actor, experiment: Experiment, start_time: Any = None, run_name: str = "",
               tags: dict[str, str] | None = None) -> Run:
    """Start a run in `experiment` on behalf of `actor`."""
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"The experiment {experiment.pk} must be in the 'active' state.")
    tags = {_key(k): _text(v, "Tag value", 8000) for k, v in (tags or {}).items()}
    run_name = _text(run_name or tags.get("mlflow.runName") or "", "Run name", 250)
    run_id = uuid.uuid4().hex
    if not run_name:
        run_name = f"run-{run_id[:8]}"
    tags["mlflow.runName"] = run_name
    run = Run.objects.create(run_id=run_id, experiment=experiment, name=run_name, user=actor,
                             start_time=_int(start_time, "start_time", now_ms()))
    RunTag.objects.bulk_create([RunTag(run=run, key=k, value=v) for k, v in tags.items()])
    events.emit("run.created", actor=actor, target=run, data={"experiment": experiment.pk, "name": run_name})
    return run


@transaction.atomic
def run_update(*, actor, run: Run, status: str | None = None, end_time: Any = None, run_name: str | None = None
               ) -> Run:
    """Change a run's status, end time or name."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    data: dict[str, Any] = {}
    if status:
        if status not in RunStatus.values:
            raise InvalidInput(f"Invalid run status {status!r}.")
        data["status"] = {"before": run.status, "after": status}
        run.status = status
    if end_time not in (None, ""):
        run.end_time = _int(end_time, "end_time")
    if run_name:
        run.name = _text(run_name, "Run name", 250)
        RunTag.objects.update_or_create(run=run, key="mlflow.runName", defaults={"value": run.name})
    run.save()
    if data:
        events.emit("run.updated", actor=actor, target=run, data=data)
    return run


@transaction.atomic
def run_set_lifecycle(*, actor, run: Run, stage: str) -> Run:
    """Soft-delete or restore a run."""
    run.lifecycle_stage = stage
    run.save(update_fields=["lifecycle_stage"])
    events.emit("run.deleted" if stage == LifecycleStage.DELETED else "run.restored", actor=actor, target=run)
    return run


def _param_rows(run: Run, params: Iterable[tuple[Any, Any]]) -> list[RunParam]:
    rows: dict[str, str] = {}
    for key, value in params:
        rows[_key(key)] = _text(value, f"Param {key!r}", 6000)
    existing = dict(RunParam.objects.filter(run=run, key__in=list(rows)).values_list("key", "value"))
    for key, value in rows.items():
        if key in existing and existing[key] != value:
            raise InvalidInput(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{existing[key]}' for run ID='{run.run_id}'. Attempted logging new value '{value}'."
            )
    return [RunParam(run=run, key=k, value=v) for k, v in rows.items() if k not in existing]


def _metric_row(run: Run, item: dict[str, Any]) -> RunMetric:
    if not isinstance(item, dict):
        raise InvalidInput("Each metric must be an object with key, value, timestamp and step.")
    value = item.get("value")
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    return RunMetric(run=run, key=_key(item.get("key")), value=_float(value, "Metric value"),
                     timestamp=_int(item.get("timestamp"), "timestamp", now_ms()),
                     step=_int(item.get("step"), "step", 0), model_id=_text(item.get("model_id"), "model_id", 64))


@transaction.atomic
def run_log_batch(*, actor, run: Run, metrics: list[dict[str, Any]] | None = None,
                  params: list[dict[str, Any]] | None = None, tags: list[dict[str, Any]] | None = None) -> None:
    """Log metrics (appended to their history), params (immutable) and tags (replaced) to a run at once."""
    metrics, params, tags = metrics or [], params or [], tags or []
    if not all(isinstance(x, list) for x in (metrics, params, tags)):
        raise InvalidInput("metrics, params and tags must be lists.")
    if len(metrics) > MAX_BATCH_METRICS or len(params) > MAX_BATCH_PARAMS or len(tags) > MAX_BATCH_TAGS:
        raise InvalidInput(f"A batch may hold at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params "
                           f"and {MAX_BATCH_TAGS} tags.")
    run = Run.objects.select_for_update().get(pk=run.pk)
    _require_active(run)
    for item in (*params, *tags):
        if not isinstance(item, dict):
            raise InvalidInput("Each param and tag must be an object with key and value.")
    RunParam.objects.bulk_create(_param_rows(run, [(p.get("key"), p.get("value")) for p in params]))
    points = [_metric_row(run, m) for m in metrics]
    if points:  # an identical point is stored once (MLflow 3 re-logs run metrics with the logged model's id)
        existing = set(RunMetric.objects.filter(run=run, key__in={p.key for p in points},
                                                timestamp__in={p.timestamp for p in points})
                       .values_list("key", "timestamp", "step", "value"))
        fresh = []
        for point in points:
            ident = (point.key, point.timestamp, point.step, point.value)
            if ident not in existing:
                existing.add(ident)
                fresh.append(point)
        RunMetric.objects.bulk_create(fresh)
    for item in tags:
        key, value = _key(item.get("key")), _text(item.get("value"), "Tag value", 8000)
        RunTag.objects.update_or_create(run=run, key=key, defaults={"value": value})
        if key == "mlflow.runName" and value:
            Run.objects.filter(pk=run.pk).update(name=value[:250])


@transaction.atomic
def run_tag_delete(*, actor, run: Run, key: str) -> None:
    """Remove a tag from a run."""
    deleted, _ = RunTag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {key} in run with id {run.run_id}")


@transaction.atomic
def run_log_inputs(*, actor, run: Run, datasets: list[dict[str, Any]] | None = None) -> None:
    """Record the datasets a run consumed (idempotent per name and digest)."""
    _require_active(run)
    for item in datasets or []:
        ds = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(ds, dict) or not ds.get("name"):
            raise InvalidInput("Each dataset input needs a dataset with a name.")
        tags = {t.get("key"): t.get("value", "") for t in item.get("tags") or [] if isinstance(t, dict)}
        RunInput.objects.update_or_create(
            run=run, name=_text(ds["name"], "Dataset name", 500), digest=_text(ds.get("digest"), "Digest", 128),
            defaults={"source_type": _text(ds.get("source_type"), "Source type", 64),
                      "source": _text(ds.get("source"), "Dataset source", 100_000),
                      "schema": _text(ds.get("schema"), "Schema", 1_000_000),
                      "profile": _text(ds.get("profile"), "Profile", 1_000_000), "tags": tags},
        )


def metric_history(*, run: Run, key: str) -> QuerySet[RunMetric]:
    """Every logged value of one metric of a run, in step order."""
    return RunMetric.objects.filter(run=run, key=key).order_by("step", "timestamp", "pk")


def latest_metrics(run: Run) -> dict[str, RunMetric]:
    """The latest value of each metric of a run (highest step, then latest timestamp)."""
    latest: dict[str, RunMetric] = {}
    for metric in RunMetric.objects.filter(run=run).order_by("key", "step", "timestamp", "pk"):
        latest[metric.key] = metric
    return latest


# ---------------------------------------------------------------------------------------- logged models


def logged_models_visible(actor) -> QuerySet[LoggedModel]:
    """Logged models `actor` may see and change."""
    if not (actor and actor.is_authenticated):
        return LoggedModel.objects.none()
    if _staff(actor):
        return LoggedModel.objects.all()
    return LoggedModel.objects.filter(Q(creator_id=actor.pk) | Q(experiment__owner_id=actor.pk))


def logged_model_get(*, actor, model_id: str) -> LoggedModel:
    """Return a visible logged model, or raise NotFound."""
    lm = logged_models_visible(actor).select_related("experiment").filter(pk=model_id).first()
    if lm is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return lm


@transaction.atomic
def logged_model_create(*, actor, experiment: Experiment, name: str = "", source_run: Run | None = None,
                        model_type: str = "", tags: dict[str, str] | None = None,
                        params: dict[str, str] | None = None) -> LoggedModel:
    """Create a pending logged model whose files are uploaded next."""
    model_id = f"m-{uuid.uuid4().hex}"
    lm = LoggedModel.objects.create(
        model_id=model_id, experiment=experiment, name=_text(name, "Name", 500) or model_id, source_run=source_run,
        creator=actor, model_type=_text(model_type, "Model type", 250),
        tags={_key(k): _text(v, "Tag value", 8000) for k, v in (tags or {}).items()},
        params={_key(k): _text(v, "Param value", 6000) for k, v in (params or {}).items()},
    )
    events.emit("logged_model.created", actor=actor, target=lm, data={
        "experiment": experiment.pk, "name": lm.name, "source_run": source_run.pk if source_run else None,
    })
    return lm


@transaction.atomic
def logged_model_finalize(*, actor, logged_model: LoggedModel, status: str) -> LoggedModel:
    """Mark a logged model's upload READY or FAILED."""
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
        raise InvalidInput(f"Invalid logged model status {status!r}.")
    lm = LoggedModel.objects.select_for_update().get(pk=logged_model.pk)
    lm.status = status
    lm.save(update_fields=["status", "updated_at"])
    events.emit("logged_model.finalized", actor=actor, target=lm, data={"status": status})
    return lm


@transaction.atomic
def logged_model_update(*, actor, logged_model: LoggedModel, set_tags: dict[str, str] | None = None,
                        delete_tag: str | None = None, params: dict[str, str] | None = None) -> LoggedModel:
    """Set or delete tags, or add params, on a logged model."""
    lm = LoggedModel.objects.select_for_update().get(pk=logged_model.pk)
    if set_tags:
        lm.tags = {**lm.tags, **{_key(k): _text(v, "Tag value", 8000) for k, v in set_tags.items()}}
    if delete_tag is not None:
        if delete_tag not in lm.tags:
            raise NotFound(f"No tag with key {delete_tag!r} on logged model {lm.pk}.")
        lm.tags = {k: v for k, v in lm.tags.items() if k != delete_tag}
    if params:
        lm.params = {**lm.params, **{_key(k): _text(v, "Param value", 6000) for k, v in params.items()}}
    lm.save(update_fields=["tags", "params", "updated_at"])
    return lm


def logged_model_search(*, actor, experiment_ids: list[Any], filter_string: str | None = None
                        ) -> QuerySet[LoggedModel]:
    """Visible logged models of some experiments, filtered by name, source_run_id, status or model_type."""
    fields = {"name": "name", "source_run_id": "source_run_id", "status": "status", "model_type": "model_type",
              "model_id": "model_id"}

    def cmp(field_name: str, op: str, value: Any) -> Q:
        column = fields.get(field_name.lower())
        if column is None:
            raise FilterError(f"Unknown field {field_name!r} in logged model filter; use {', '.join(fields)}.")
        return string_lookup(column, op, value)

    ids = [_experiment_id(e) for e in experiment_ids or []]
    qs = logged_models_visible(actor).filter(compile_filter(filter_string, cmp))
    if ids:
        qs = qs.filter(experiment_id__in=ids)
    return qs.select_related("experiment").order_by("-created_at", "model_id")


# ---------------------------------------------------------------------------------- artifact locations


def run_artifact_uri(run: Run) -> str:
    """Where a run's artifacts live, as the client sees it."""
    return f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts"


def logged_model_artifact_uri(lm: LoggedModel) -> str:
    """Where a logged model's files live, as the client sees it."""
    return f"mlflow-artifacts:/{lm.experiment_id}/models/{lm.model_id}/artifacts"


def version_artifact_uri(version: ModelVersion) -> str:
    """Where a registered version's own file tree is served, as the client sees it."""
    return f"mlflow-artifacts:/{REGISTRY_ROOT}/{version.model_id}/{version.number}"


@dataclass
class ArtifactRoot:
    """An artifact root named by an mlflow-artifacts path, with the rest of the path inside it."""

    run: Run | None = None
    logged_model: LoggedModel | None = None
    version: ModelVersion | None = None
    rel: str = ""

    def rows(self) -> QuerySet:
        """The files under this root (TrackedArtifact or Artifact rows)."""
        if self.version is not None:
            return Artifact.objects.filter(version=self.version)
        if self.run is not None:
            return TrackedArtifact.objects.filter(run=self.run)
        return TrackedArtifact.objects.filter(logged_model=self.logged_model)


def artifact_root_resolve(*, actor, path: str) -> ArtifactRoot:
    """Map an mlflow-artifacts path to the run, logged model or version that owns it, checking visibility."""
    clean = path.strip("/")
    if not clean:
        raise NotFound("No such artifact root: ''")
    parts = clean.split("/")
    if ".." in parts or "." in parts or "" in parts:
        raise InvalidInput("Artifact path must not contain empty, '.' or '..' segments.")
    if parts[0] == REGISTRY_ROOT and len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
        version = ModelVersion.objects.select_related("model").filter(
            model__in=permissions.visible_models(actor), model_id=int(parts[1]), number=int(parts[2])
        ).first()
        if version is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(version=version, rel="/".join(parts[3:]))
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        lm = logged_models_visible(actor).filter(pk=parts[2], experiment_id=_int(parts[0], "experiment id")).first()
        if lm is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(logged_model=lm, rel="/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        run = runs_visible(actor).filter(pk=parts[1], experiment_id=_int(parts[0], "experiment id")).first()
        if run is None:
            raise NotFound(f"No such artifact: '{path}'")
        return ArtifactRoot(run=run, rel="/".join(parts[3:]))
    raise NotFound(f"No such artifact: '{path}'")


def artifact_list(root: ArtifactRoot) -> list[dict[str, Any]]:
    """List the immediate children of `root.rel`: [{path, is_dir, file_size?}] (empty for a file or nothing)."""
    prefix = f"{root.rel}/" if root.rel else ""
    seen: dict[str, dict[str, Any]] = {}
    for path, size in root.rows().filter(path__startswith=prefix).values_list("path", "size"):
        if not path.startswith(prefix):
            continue  # SQLite's LIKE ignores case
        rest = path[len(prefix):]
        head, sep, _ = rest.partition("/")
        if sep:
            seen.setdefault(head, {"path": head, "is_dir": True})
        else:
            seen[head] = {"path": head, "is_dir": False, "file_size": size}
    return [seen[k] for k in sorted(seen)]


def artifact_file(root: ArtifactRoot) -> Any:
    """Return the row (with its blob) for the file at `root.rel`, or raise NotFound."""
    row = root.rows().select_related("blob").filter(path=root.rel).first() if root.rel else None
    if row is None:
        raise NotFound(f"No such artifact: '{root.rel}'")
    return row


@transaction.atomic
def artifact_put(*, actor, root: ArtifactRoot, upload: SpooledUpload) -> TrackedArtifact:
    """Store an uploaded file under a run's or logged model's root (content-addressed, replacing that path)."""
    try:
        if root.version is not None:
            raise InvalidInput("A registered version's files are read-only here; upload through the native API.")
        path = validate_artifact_path(root.rel)
        if root.run is not None:
            _require_active(root.run)
        fmt = upload.format
        blob = blob_put(upload)
    except BaseException:
        upload.discard()
        raise
    owner = {"run": root.run} if root.run is not None else {"logged_model": root.logged_model}
    row, _ = TrackedArtifact.objects.update_or_create(
        **owner, path=path, defaults={"blob": blob, "size": blob.size, "format": fmt}
    )
    return row


# --------------------------------------------------------------------------------------------- provenance


@dataclass
class Provenance:
    """What a version registered from a source inherits: run id, file tree, params, metrics and datasets."""

    run_id: str = ""
    files: list[tuple[str, Blob, str]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict[str, str]] = field(default_factory=list)
    logged_model: LoggedModel | None = None


def _files_under(rows: QuerySet, prefix: str) -> list[tuple[str, Blob, str]]:
    prefix = prefix.strip("/")
    lead = f"{prefix}/" if prefix else ""
    out = []
    for row in rows.select_related("blob").order_by("path"):
        if row.path.startswith(lead):
            out.append((row.path[len(lead):], row.blob, row.format))
        elif prefix and row.path == prefix:  # the source names a single file
            out.append((prefix.rsplit("/", 1)[-1], row.blob, row.format))
    return out


def _safe_key(key: str) -> bool:
    return bool(key) and "__" not in key and len(key) <= 250 and not any(ord(c) < 32 for c in key)


def _run_provenance(prov: Provenance, run: Run) -> None:
    prov.run_id = prov.run_id or run.run_id
    for key, value in RunParam.objects.filter(run=run).values_list("key", "value"):
        if _safe_key(key) and len(value) <= 6000:
            prov.params.setdefault(key, value)
    for key, metric in latest_metrics(run).items():
        if _safe_key(key) and math.isfinite(metric.value):
            prov.metrics.setdefault(key, metric.value)
    for ds in RunInput.objects.filter(run=run):
        context = str(ds.tags.get("mlflow.data.context", "")).lower()
        role = {"training": "train", "train": "train", "eval": "validation", "validation": "validation",
                "test": "test"}.get(context, "train")
        prov.datasets.append({"name": ds.name[:256], "uri": ds.source[:2048] if ds.source_type != "code" else "",
                              "digest": ds.digest[:128], "role": role})


def source_provenance(*, actor, source: str, run_id: str = "", model_id: str = "") -> Provenance:
    """Resolve a validated source to the files and provenance a new version inherits (reads only, no bytes)."""
    from registry import selectors

    prov = Provenance(run_id=run_id or "")
    run: Run | None = None
    if source.startswith("models:/m-") or model_id:
        lm_id = source[len("models:/"):] if source.startswith("models:/m-") else model_id
        lm = logged_model_get(actor=actor, model_id=lm_id)
        prov.logged_model = lm
        if source.startswith("models:/m-"):
            prov.files = _files_under(TrackedArtifact.objects.filter(logged_model=lm), "")
        for key, value in lm.params.items():
            if _safe_key(key):
                prov.params[key] = str(value)[:6000]
        run = lm.source_run
    if source.startswith("models:/") and not source.startswith("models:/m-"):
        rest = source[len("models:/"):]
        name, ref = rest.split("@", 1) if "@" in rest and "/" not in rest else rest.split("/", 1)
        model = selectors.model_get(actor=actor, name=name)
        version = selectors.version_resolve(model=model, ref=ref)
        prov.files = _files_under(Artifact.objects.filter(version=version), "")
        prov.params.update(version.params)
        prov.metrics.update(version.metrics)
        prov.run_id = prov.run_id or version.run_id
    elif source.startswith("runs:/"):
        rid, _, path = source[len("runs:/"):].partition("/")
        run = run_get(actor=actor, run_id=rid)
        prov.files = _files_under(TrackedArtifact.objects.filter(run=run), path)
        if not prov.files and path:
            lm = logged_models_visible(actor).filter(source_run=run, name=path.split("/")[0]).order_by(
                "-created_at").first()
            if lm is not None:
                prov.logged_model = lm
                prov.files = _files_under(TrackedArtifact.objects.filter(logged_model=lm), "/".join(
                    path.split("/")[1:]))
    elif source.startswith("mlflow-artifacts:/"):
        root = artifact_root_resolve(actor=actor, path=source[len("mlflow-artifacts:/"):])
        prov.files = _files_under(root.rows(), root.rel)
        run = run or root.run or (root.logged_model.source_run if root.logged_model else None)
    if run is None and prov.run_id:
        run = runs_visible(actor).filter(pk=prov.run_id).first()
    if run is not None:
        _run_provenance(prov, run)
    return prov
