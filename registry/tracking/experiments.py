"""Experiments: the shared Default experiment, visibility, search by name, and their lifecycle and tags."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from registry import events, permissions
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.models import Experiment, LifecycleStage
from registry.search.compiler import compile_filter, json_key, string_lookup
from registry.search.parser import NULL_OPS, FilterError
from registry.tracking.common import clean_key, clean_text, parse_experiment_id, sees_everything

DEFAULT_EXPERIMENT_ID = 0
DEFAULT_EXPERIMENT_NAME = "Default"
_SEARCH_ATTRIBUTES = ("name", "experiment_id", "creation_time", "last_update_time")  # MLflow's, for its errors


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


def experiments_visible(actor: Any) -> QuerySet[Experiment]:
    """Experiments `actor` may see and log to."""
    if not (actor and actor.is_authenticated):
        return Experiment.objects.none()
    if sees_everything(actor):
        return Experiment.objects.all()
    return Experiment.objects.filter(Q(owner_id=actor.pk) | Q(pk=DEFAULT_EXPERIMENT_ID))


def experiment_get(*, actor: Any, experiment_id: Any) -> Experiment:
    """Return a visible experiment by id, or raise NotFound."""
    exp_id = parse_experiment_id(experiment_id)
    if exp_id == DEFAULT_EXPERIMENT_ID:
        default_experiment()
    exp = experiments_visible(actor).filter(pk=exp_id).first()
    if exp is None:
        raise NotFound(f"No Experiment with id={exp_id} exists")
    return exp


def experiment_get_by_name(*, actor: Any, name: str) -> Experiment:
    """Return a visible experiment by name, or raise NotFound."""
    if name == DEFAULT_EXPERIMENT_NAME:
        default_experiment()
    exp = experiments_visible(actor).filter(name=name).first()
    if exp is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return exp


def _tag_lookup(key: str, op: str, value: Any) -> Q:
    """`tags.<key> op value` as MLflow means it: only experiments that have the tag match, `!=` included."""
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
        key = key[1:-1]
    if op in NULL_OPS:  # whether the experiment has the tag at all
        return ~Q(tags__has_key=json_key(key)) if op == "IS NULL" else Q(tags__has_key=json_key(key))
    if op not in ("=", "!=", "LIKE", "ILIKE"):
        raise FilterError(f"Invalid comparator '{op}' not one of '['!=', '=', 'ILIKE', 'LIKE']'")
    if not isinstance(value, str):
        raise FilterError(f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {value}")
    return Q(tags__has_key=key) & string_lookup(f"tags__{json_key(key)}", op, value)


def experiment_search(*, actor: Any, filter_string: str | None = None, view_type: str = "ACTIVE_ONLY"
                      ) -> QuerySet[Experiment]:
    """Visible experiments matching a name or tag filter (=, !=, LIKE, ILIKE), oldest first."""
    default_experiment()

    def cmp(field_name: str, op: str, value: Any) -> Q:
        prefix, dot, key = field_name.partition(".")
        attribute = key if dot and prefix in ("attribute", "attributes") else field_name
        if op in NULL_OPS and attribute in _SEARCH_ATTRIBUTES:
            raise FilterError(f"IS NULL / IS NOT NULL is only supported for tags, not for attribute '{attribute}'")
        if field_name.lower() == "name":
            return string_lookup("name", op, value)
        if dot and prefix in ("tag", "tags"):
            return _tag_lookup(key, op, value)
        raise FilterError(f"Unknown field {field_name!r} in experiment filter; use name or tags.<key>.")

    qs = experiments_visible(actor).filter(compile_filter(filter_string, cmp))
    if view_type in ("ACTIVE_ONLY", "", None):
        qs = qs.filter(lifecycle_stage=LifecycleStage.ACTIVE)
    elif view_type == "DELETED_ONLY":
        qs = qs.filter(lifecycle_stage=LifecycleStage.DELETED)
    return qs.order_by("pk")


@transaction.atomic
def experiment_create(*, actor: Any, name: str, artifact_location: str = "", tags: dict[str, str] | None = None
                      ) -> Experiment:
    """Create an experiment owned by `actor`; its artifacts always live in Stratum's store."""
    if not permissions.can_create_model(actor):
        raise InvalidInput("You must be signed in to create an experiment.")
    if not isinstance(name, str) or not name.strip() or len(name) > 500:
        raise InvalidInput("Experiment name must be a non-empty string of at most 500 characters.")
    name = clean_text(name, "Experiment name", 500, multiline=False)
    tags = {clean_key(k): clean_text(v, "Tag value", 5000) for k, v in (tags or {}).items()}
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


def experiment_for_import(*, actor: Any, name: str, tags: dict[str, str] | None = None) -> tuple[Experiment, bool]:
    """The experiment an imported run lands in: the visible one of that name, else a new one owned by `actor`
    (with `tags`); return it and whether it is new. A name taken by an experiment `actor` may not see is refused."""
    try:
        return experiment_get_by_name(actor=actor, name=name), False
    except NotFound:
        return experiment_create(actor=actor, name=name, tags=tags), True


@transaction.atomic
def experiment_update(*, actor: Any, experiment: Experiment, new_name: str | None = None,
                      lifecycle_stage: str | None = None) -> Experiment:
    """Rename, delete (soft) or restore an experiment."""
    if experiment.pk == DEFAULT_EXPERIMENT_ID and (new_name or lifecycle_stage == LifecycleStage.DELETED):
        raise InvalidInput("The Default experiment cannot be renamed or deleted.")
    data: dict[str, Any] = {}
    if new_name:
        new_name = clean_text(new_name, "Experiment name", 500, multiline=False)
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
def experiment_tag_set(*, actor: Any, experiment: Experiment, key: str, value: str) -> None:
    """Set a tag on an experiment."""
    exp = Experiment.objects.select_for_update(no_key=True).get(pk=experiment.pk)
    exp.tags = {**exp.tags, clean_key(key): clean_text(value, "Tag value", 5000)}
    exp.save(update_fields=["tags", "updated_at"])
