"""MLflow's JSON shapes (proto3 JSON, snake_case, timestamps in ms, versions as strings, empty fields omitted)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from registry import selectors
from registry.lineage import selectors as lineage_selectors
from registry.models import (
    Experiment,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
    RunMetric,
    RunParam,
    RunTag,
    VersionTag,
)
from registry.pipeline.scan.trust import TrustState, VersionTrust, versions_trust
from registry.tracking import artifacts as tracking_artifacts
from registry.tracking import runs as tracking_runs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def ms(value: datetime | None) -> int | None:
    """Milliseconds since the epoch of an aware datetime, rounded down (exact: no float in between)."""
    return (value - EPOCH) // ONE_MS if value is not None else None


def _tags(items: Any) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items]


def _float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def unverified_message(run_id: str) -> str:
    """The status message of a version whose run Stratum does not hold (registered from a run tracked elsewhere)."""
    return f"Run {run_id} is held elsewhere: not verified by Stratum."


def registration_status(status: str, message: str, trust: VersionTrust | None) -> tuple[str, str]:
    """MLflow's (status, status_message) of a version: PENDING_REGISTRATION while a pickle-family file awaits its
    scan, FAILED_REGISTRATION naming the offending globals while a file is quarantined, else what is stored."""
    if status != "READY" or trust is None:
        return status, message
    if trust.state == TrustState.QUARANTINED:
        return "FAILED_REGISTRATION", trust.detail
    if trust.state == TrustState.PENDING:
        return "PENDING_REGISTRATION", trust.detail
    return status, message


def version(v: ModelVersion, *, aliases: bool = True, unverified: set[str] | None = None,
            trust: dict[int, VersionTrust] | None = None) -> dict[str, Any]:
    """A ModelVersion; `aliases` is left out of search results, as MLflow does. `unverified` holds the run ids Stratum
    does not hold, and `trust` the versions' trust, when the caller already knows them (else a query finds out)."""
    if trust is None:
        trust = versions_trust([v.pk])
    status, message = registration_status(v.status, v.status_message, trust.get(v.pk))
    out: dict[str, Any] = {
        "name": v.model.name,
        "version": str(v.number),
        "creation_timestamp": ms(v.created_at),
        "last_updated_timestamp": ms(v.updated_at),
        "current_stage": v.stage,
        "description": v.description,
        "source": v.source_uri,
        "run_id": v.run_id,
        "status": status,
        "run_link": "",
    }
    if v.creator_id is not None and v.creator is not None:
        out["user_id"] = v.creator.get_username()
    if unverified is None:
        unverified = lineage_selectors.runs_held_elsewhere([v.run_id])
    if message:
        out["status_message"] = message
    elif v.run_id in unverified:
        out["status_message"] = unverified_message(v.run_id)
    tags = [(t.key, t.value) for t in v.tags.all()]
    if tags:
        out["tags"] = _tags(tags)
    if aliases:
        names = sorted(a.name for a in v.aliases.all())
        if names:
            out["aliases"] = names
    return out


SEARCH_COLUMNS = ("pk", "model__name", "number", "created_at", "updated_at", "stage", "description", "source_uri",
                  "run_id", "status", "status_message", "creator__username")


def version_rows(qs: Any, *, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """ModelVersions for search results (no aliases) straight from column values: 2 queries, no model instances.

    `qs` is the whole (unsliced) result; the page is rows offset..offset+limit.
    """
    page = qs[offset:] if limit is None else qs[offset: offset + limit]
    rows = list(page.values_list(*SEARCH_COLUMNS))
    tags: dict[int, list[dict[str, str]]] = {}
    if rows:
        if offset == 0 and (limit is None or len(rows) < limit):
            # The page is the whole result: join the tags to the same filter rather than bind thousands of ids.
            tag_qs = VersionTag.objects.filter(version_id__in=qs.order_by().values("pk"))
        else:
            tag_qs = VersionTag.objects.filter(version_id__in=[r[0] for r in rows])
        for version_id, key, value in tag_qs.order_by("key").values_list("version_id", "key", "value"):
            tags.setdefault(version_id, []).append({"key": key, "value": value})
    unverified = lineage_selectors.runs_held_elsewhere(r[8] for r in rows)
    trust = versions_trust([r[0] for r in rows]) if rows else {}
    out = []
    for pk, name, number, created, updated, stage, description, source, run_id, status, message, user in rows:
        status, message = registration_status(status, message, trust.get(pk))
        item: dict[str, Any] = {
            "name": name, "version": str(number), "creation_timestamp": ms(created),
            "last_updated_timestamp": ms(updated), "current_stage": stage, "description": description,
            "source": source, "run_id": run_id, "status": status, "run_link": "",
        }
        if user:
            item["user_id"] = user
        if message:
            item["status_message"] = message
        elif run_id in unverified:
            item["status_message"] = unverified_message(run_id)
        if pk in tags:
            item["tags"] = tags[pk]
        out.append(item)
    return out


def registered_models(models: list[RegisteredModel], *, search: bool = False) -> list[dict[str, Any]]:
    """RegisteredModels with their latest version per stage, tags and aliases, in a fixed number of queries.

    The latest versions come in MLflow's order: by version number on `get`, by stage name in `search` results (its
    window query reads them back in (name, stage) order).
    """
    for m in models:
        if deferred := m.get_deferred_fields() & set(selectors.MODEL_VOLATILE):  # a cached row: one query for both
            m.refresh_from_db(fields=sorted(deferred))
    ids = [m.pk for m in models]
    versioned = [m.pk for m in models if m.last_version_number]  # a model never given a version has no aliases
    latest = selectors.latest_versions_by_stage(model_ids=versioned)
    tags_of, aliases_of = selectors.model_tags_and_aliases(ids, versioned_ids=versioned)
    unverified = lineage_selectors.runs_held_elsewhere(v.run_id for vs in latest.values() for v in vs)
    trust = versions_trust([v.pk for vs in latest.values() for v in vs]) if latest else {}
    out = []
    for m in models:
        item: dict[str, Any] = {
            "name": m.name,
            "creation_timestamp": ms(m.created_at),
            "last_updated_timestamp": ms(m.updated_at),
        }
        if m.description:
            item["description"] = m.description
        if latest.get(m.pk):
            key = (lambda v: v.stage) if search else (lambda v: v.number)
            item["latest_versions"] = [version(v, aliases=False, unverified=unverified, trust=trust)
                                       for v in sorted(latest[m.pk], key=key)]
        if tags := tags_of.get(m.pk):
            item["tags"] = _tags(tags)
        if aliases := aliases_of.get(m.pk):
            item["aliases"] = [{"alias": name, "version": str(number)} for name, number in aliases]
        out.append(item)
    return out


def experiment(exp: Experiment) -> dict[str, Any]:
    """An Experiment."""
    out: dict[str, Any] = {
        "experiment_id": str(exp.pk),
        "name": exp.name,
        "artifact_location": f"mlflow-artifacts:/{exp.pk}",
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": ms(exp.updated_at),
        "creation_time": ms(exp.created_at),
        "workspace": "default",  # MLflow 3 names the workspace even with workspaces off; Stratum has the one
    }
    if exp.tags:
        out["tags"] = _tags(sorted(exp.tags.items()))
    return out


def run_info(run: Run) -> dict[str, Any]:
    """A RunInfo."""
    out: dict[str, Any] = {
        "run_uuid": run.run_id,
        "run_id": run.run_id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user.get_username() if run.user_id and run.user else "",
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": tracking_artifacts.run_artifact_uri(run),
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        out["end_time"] = run.end_time
    return out


def metric(m: RunMetric) -> dict[str, Any]:
    """A Metric point."""
    out = {"key": m.key, "value": _float(m.value), "timestamp": m.timestamp, "step": m.step}
    if m.model_id:
        out["model_id"] = m.model_id
    return out


RUN_BATCH = 5000  # ids bound per query: far below SQLite's limit on bound parameters


def run(r: Run) -> dict[str, Any]:
    """A Run with its latest metrics, params, tags, dataset inputs and model outputs."""
    return runs([r])[0]


def runs(page: list[Run]) -> list[dict[str, Any]]:
    """Runs with their latest metrics, params, tags, dataset inputs and model outputs: five queries for a page of
    up to RUN_BATCH runs, whatever its size (their experiment and user come with the runs)."""
    data: dict[str, dict[str, list[dict[str, Any]]]] = {r.run_id: {} for r in page}
    datasets: dict[str, list[dict[str, Any]]] = {}
    outputs: dict[str, list[dict[str, Any]]] = {}
    ids = list(data)
    for start in range(0, len(ids), RUN_BATCH):
        chunk = ids[start: start + RUN_BATCH]
        # MLflow lists a run's data in the order it was first logged.
        for point in tracking_runs.latest_metric_points(chunk):
            data[point.run_id].setdefault("metrics", []).append(metric(point))
        for kind, rows in (("params", RunParam.objects.filter(run_id__in=chunk)),
                           ("tags", RunTag.objects.filter(run_id__in=chunk))):
            for run_id, key, value in rows.order_by("pk").values_list("run_id", "key", "value"):
                data[run_id].setdefault(kind, []).append({"key": key, "value": value})
        for ds in RunInput.objects.filter(run_id__in=chunk).order_by("pk"):
            datasets.setdefault(ds.run_id, []).append({
                "tags": _tags(sorted(ds.tags.items())),
                "dataset": {k: v for k, v in {"name": ds.name, "digest": ds.digest, "source_type": ds.source_type,
                                              "source": ds.source, "schema": ds.schema,
                                              "profile": ds.profile}.items() if v}})
        for run_id, model_id in (LoggedModel.objects.filter(source_run_id__in=chunk).order_by("created_at", "pk")
                                 .values_list("source_run_id", "pk")):
            outputs.setdefault(run_id, []).append({"model_id": model_id, "step": 0})
    return [{"info": run_info(r), "data": {k: data[r.run_id][k] for k in ("metrics", "params", "tags")
                                           if k in data[r.run_id]},
             "inputs": {"dataset_inputs": datasets[r.run_id]} if r.run_id in datasets else {},
             "outputs": {"model_outputs": outputs[r.run_id]} if r.run_id in outputs else {}} for r in page]


def logged_model(lm: LoggedModel) -> dict[str, Any]:
    """A LoggedModel (info + data)."""
    info: dict[str, Any] = {
        "model_id": lm.model_id,
        "experiment_id": str(lm.experiment_id),
        "name": lm.name,
        "creation_timestamp_ms": ms(lm.created_at),
        "last_updated_timestamp_ms": ms(lm.updated_at),
        "artifact_uri": tracking_artifacts.logged_model_artifact_uri(lm),
        "status": lm.status,
        "model_type": lm.model_type,
    }
    if lm.source_run_id:
        info["source_run_id"] = lm.source_run_id
    if lm.tags:
        info["tags"] = _tags(sorted(lm.tags.items()))
    data: dict[str, Any] = {}
    if lm.params:
        data["params"] = _tags(sorted(lm.params.items()))
    return {"info": info, "data": data}
