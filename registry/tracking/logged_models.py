"""Logged models: MLflow 3's models logged from a run, created pending, finalized once their files are up."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from registry import events
from registry.errors import InvalidInput, NotFound
from registry.models import Experiment, LoggedModel, LoggedModelStatus, Run
from registry.search.compiler import compile_filter, string_lookup
from registry.search.parser import NULL_OPS, FilterError
from registry.tracking.common import clean_key, clean_text, parse_experiment_id, sees_everything


def logged_models_visible(actor: Any) -> QuerySet[LoggedModel]:
    """Logged models `actor` may see and change."""
    if not (actor and actor.is_authenticated):
        return LoggedModel.objects.none()
    if sees_everything(actor):
        return LoggedModel.objects.all()
    return LoggedModel.objects.filter(Q(creator_id=actor.pk) | Q(experiment__owner_id=actor.pk))


def logged_model_get(*, actor: Any, model_id: str) -> LoggedModel:
    """Return a visible logged model, or raise NotFound."""
    lm = logged_models_visible(actor).select_related("experiment").filter(pk=model_id).first()
    if lm is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return lm


@transaction.atomic
def logged_model_create(*, actor: Any, experiment: Experiment, name: str = "", source_run: Run | None = None,
                        model_type: str = "", tags: dict[str, str] | None = None,
                        params: dict[str, str] | None = None) -> LoggedModel:
    """Create a pending logged model whose files are uploaded next."""
    model_id = f"m-{uuid.uuid4().hex}"
    lm = LoggedModel.objects.create(
        model_id=model_id, experiment=experiment, source_run=source_run,
        name=clean_text(name, "Name", 500, multiline=False) or model_id,
        creator=actor, model_type=clean_text(model_type, "Model type", 250, multiline=False),
        tags={clean_key(k): clean_text(v, "Tag value", 8000) for k, v in (tags or {}).items()},
        params={clean_key(k): clean_text(v, "Param value", 6000) for k, v in (params or {}).items()},
    )
    events.emit("logged_model.created", actor=actor, target=lm, data={
        "experiment": experiment.pk, "name": lm.name, "source_run": source_run.pk if source_run else None,
    })
    return lm


@transaction.atomic
def logged_model_finalize(*, actor: Any, logged_model: LoggedModel, status: str) -> LoggedModel:
    """Mark a logged model's upload READY or FAILED."""
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
        raise InvalidInput(f"Invalid logged model status {status!r}.")
    lm = LoggedModel.objects.select_for_update(no_key=True).get(pk=logged_model.pk)
    lm.status = status
    lm.save(update_fields=["status", "updated_at"])
    events.emit("logged_model.finalized", actor=actor, target=lm, data={"status": status})
    return lm


@transaction.atomic
def logged_model_update(*, actor: Any, logged_model: LoggedModel, set_tags: dict[str, str] | None = None,
                        delete_tag: str | None = None, params: dict[str, str] | None = None) -> LoggedModel:
    """Set or delete tags, or add params, on a logged model."""
    lm = LoggedModel.objects.select_for_update(no_key=True).get(pk=logged_model.pk)
    if set_tags:
        lm.tags = {**lm.tags, **{clean_key(k): clean_text(v, "Tag value", 8000) for k, v in set_tags.items()}}
    if delete_tag is not None:
        if delete_tag not in lm.tags:
            raise NotFound(f"No tag with key {delete_tag!r} on logged model {lm.pk}.")
        lm.tags = {k: v for k, v in lm.tags.items() if k != delete_tag}
    if params:
        lm.params = {**lm.params, **{clean_key(k): clean_text(v, "Param value", 6000) for k, v in params.items()}}
    lm.save(update_fields=["tags", "params", "updated_at"])
    return lm


def logged_model_search(*, actor: Any, experiment_ids: list[Any], filter_string: str | None = None
                        ) -> QuerySet[LoggedModel]:
    """Visible logged models of some experiments, filtered by name, source_run_id, status or model_type."""
    fields = {"name": "name", "source_run_id": "source_run_id", "status": "status", "model_type": "model_type",
              "model_id": "model_id"}

    def cmp(field_name: str, op: str, value: Any) -> Q:
        if op in NULL_OPS:  # MLflow's logged-model filter has no IS [NOT] NULL; its error, word for word
            raise FilterError(f"Invalid comparison: {field_name}{op}. Expected a comparison with 3 tokens.")
        column = fields.get(field_name.lower())
        if column is None:
            raise FilterError(f"Unknown field {field_name!r} in logged model filter; use {', '.join(fields)}.")
        return string_lookup(column, op, value)

    ids = [parse_experiment_id(e) for e in experiment_ids or []]
    qs = logged_models_visible(actor).filter(compile_filter(filter_string, cmp))
    if ids:
        qs = qs.filter(experiment_id__in=ids)
    return qs.select_related("experiment").order_by("-created_at", "model_id")
