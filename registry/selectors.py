"""Reads shared by pages and APIs, scoped to the actor and written to run in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Max, Prefetch, QuerySet

from registry import permissions
from registry.errors import InvalidInput, NotFound
from registry.filters import ModelFilter
from registry.models import (
    AccessToken,
    Alias,
    Artifact,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionDataset,
    VersionTag,
)
from registry.prepared import Prepared
from registry.search.compiler import compile_model_filter, compile_version_filter


def _one(qs: QuerySet) -> Any:
    """Return the single row a unique lookup matches, or None (no ORDER BY, unlike .first())."""
    rows = list(qs.order_by()[:1])
    return rows[0] if rows else None


def model_list(*, actor, filters: Mapping[str, Any] | None = None) -> QuerySet[RegisteredModel]:
    """Return the models `actor` may see matching `filters` (the ModelFilter fields: filter, stage, tag, order),
    with what list pages show, prefetched; invalid filters raise InvalidInput."""
    qs = (
        permissions.visible_models(actor)
        .annotate(version_count=Count("versions", distinct=True), latest_version=Max("versions__number"))
        .select_related("owner", "successor")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .order_by("name", "pk")
    )
    filterset = ModelFilter(filters or {}, queryset=qs)
    if not filterset.is_valid():
        raise InvalidInput(filterset.error_message())
    return filterset.qs


_MODEL_BY_NAME: Prepared[RegisteredModel] = Prepared(
    lambda name: RegisteredModel.objects.select_related("owner", "successor").filter(name=name).order_by()[:1])


def model_get(*, actor, name: str) -> RegisteredModel:
    """Return the model named `name` if `actor` may see it, else raise NotFound."""
    # By name, then the role check (no query for staff and owners; one, cached for the request, otherwise): the
    # visibility subquery costs more to build than both together on this, the most common lookup.
    model = None if name is None else _MODEL_BY_NAME.one(name=str(name))
    if model is None or not permissions.can_view(actor, model):
        raise NotFound(f"Registered model {name!r} not found.")
    return model


def version_queryset() -> QuerySet[ModelVersion]:
    """Versions with what detail and list views show."""
    return ModelVersion.objects.select_related("model", "creator", "successor", "successor__model").prefetch_related(
        "tags", "datasets", Prefetch("aliases", queryset=Alias.objects.only("id", "name", "version_id", "model_id"))
    )


def version_list(*, actor, model: RegisteredModel | None = None, filter_string: str | None = None
                 ) -> QuerySet[ModelVersion]:
    """Return versions `actor` may see (of one model, or across models), newest first."""
    visible = permissions.visible_models(actor)
    qs = version_queryset().filter(model__in=visible) if model is None else version_queryset().filter(model=model)
    return qs.filter(compile_version_filter(filter_string)).order_by("model__name", "-number")


def version_get(*, model: RegisteredModel, number: int | str) -> ModelVersion:
    """Return version `number` of an already visible model, or raise NotFound."""
    try:
        num = int(number)
    except (TypeError, ValueError):
        raise InvalidInput(f"Version must be a positive integer, not {number!r}.")
    version = _one(version_queryset().filter(model=model, number=num))
    if version is None:
        raise NotFound(f"Model {model.name!r} has no version {num}.")
    return version


def version_resolve(*, model: RegisteredModel, ref: str) -> ModelVersion:
    """Resolve '3', 'v3', 'latest' or an alias name to a version of a visible model."""
    if ref.isdigit():
        return version_get(model=model, number=int(ref))
    if ref.lower() == "latest":
        version = version_queryset().filter(model=model).order_by("-number").first()
        if version is None:
            raise NotFound(f"Model {model.name!r} has no versions.")
        return version
    if len(ref) > 1 and ref[0] in "vV" and ref[1:].isdigit():
        return version_get(model=model, number=int(ref[1:]))
    return alias_resolve(model=model, alias=ref)


def alias_resolve(*, model: RegisteredModel, alias: str) -> ModelVersion:
    """Return the version `alias` points at, or raise NotFound."""
    version = _one(version_queryset().filter(model=model, aliases__name=alias))
    if version is None:
        raise NotFound(f"Model {model.name!r} has no alias {alias!r}.")
    return version


_VERSION_BY_ALIAS: Prepared[ModelVersion] = Prepared(
    lambda name, alias: ModelVersion.objects.select_related("model", "creator")
    .filter(model__name=name, aliases__name=alias).order_by()[:1])


def alias_find_by_name(*, actor, name: str, alias: str) -> ModelVersion | None:
    """The version `name@alias` points at if `actor` may see it, else None; two queries (the hot path of
    serving clients and MLflow's get-by-alias)."""
    # No successor join: only deprecated versions have one, and reading it then costs one query on that path.
    # The role check follows the lookup (no query for staff and owners), as in model_get.
    version = None if name is None or alias is None else _VERSION_BY_ALIAS.one(name=str(name), alias=str(alias))
    if version is None or not permissions.can_view(actor, version.model):
        return None
    attach_related([version])
    return version


def alias_resolve_by_name(*, actor, name: str, alias: str) -> ModelVersion:
    """Resolve `name@alias` for `actor`, or raise the precise NotFound (no such model, or no such alias)."""
    version = alias_find_by_name(actor=actor, name=name, alias=alias)
    if version is None:
        alias_resolve(model=model_get(actor=actor, name=name), alias=alias)  # raises the precise NotFound
    return version


def attach_related(versions: list[ModelVersion]) -> None:
    """Fill the tags, datasets and aliases of versions with one UNION query instead of three prefetches.

    The objects land in Django's prefetch cache, so `version.tags.all()` and friends read them without a query.
    """
    from django.db import connection

    if not versions:
        return
    ids = [v.pk for v in versions]
    marks = ", ".join(["%s"] * len(ids))
    tag, dataset, alias = VersionTag._meta.db_table, VersionDataset._meta.db_table, Alias._meta.db_table
    # Table names come from model meta and every value is a bound parameter, so nothing user-supplied is spliced.
    sql = (f"SELECT 't', version_id, id, key, value, '', '' FROM {tag} "  # noqa: S608
           f"WHERE version_id IN ({marks}) "
           f"UNION ALL SELECT 'd', version_id, id, name, uri, digest, role FROM {dataset} "
           f"WHERE version_id IN ({marks}) "
           f"UNION ALL SELECT 'a', version_id, id, name, '', '', '' FROM {alias} WHERE version_id IN ({marks})")
    found: dict[int, dict[str, list[Any]]] = {pk: {"tags": [], "datasets": [], "aliases": []} for pk in ids}
    with connection.cursor() as cursor:
        cursor.execute(sql, ids * 3)
        rows = cursor.fetchall()
    by_pk = {v.pk: v for v in versions}
    for kind, version_id, pk, a, b, c, d in rows:
        version = by_pk[version_id]
        if kind == "t":
            found[version_id]["tags"].append(VersionTag(id=pk, version_id=version_id, key=a, value=b))
        elif kind == "d":
            found[version_id]["datasets"].append(VersionDataset(id=pk, version_id=version_id, name=a, uri=b,
                                                                digest=c, role=d))
        else:
            found[version_id]["aliases"].append(Alias(id=pk, version_id=version_id, model_id=version.model_id,
                                                      name=a))
    for version_id, related in found.items():
        prime_related(by_pk[version_id], **related)


def prime_related(version: ModelVersion, *, tags: list[VersionTag], datasets: list[VersionDataset],
                  aliases: list[Alias]) -> None:
    """Put a version's tags, datasets and aliases (already known) in Django's prefetch cache, in model order,
    so `version.tags.all()` and friends read them without a query."""
    related = {"tags": sorted(tags, key=lambda t: t.key),
               "datasets": sorted(datasets, key=lambda ds: (ds.role, ds.name)),
               "aliases": sorted(aliases, key=lambda al: al.name)}
    cache = getattr(version, "_prefetched_objects_cache", None)
    if cache is None:
        cache = version._prefetched_objects_cache = {}
    for name, objects in related.items():
        manager = getattr(version, name)
        qs = manager.get_queryset()
        qs._result_cache, qs._prefetch_done = objects, True
        cache[manager.field.remote_field.cache_name] = qs


def is_primed(version: ModelVersion) -> bool:
    """True when the version's tags, datasets and aliases are in its prefetch cache (no query to read them)."""
    cache = getattr(version, "_prefetched_objects_cache", {})
    return all(getattr(version, name).field.remote_field.cache_name in cache
               for name in ("tags", "datasets", "aliases"))


def artifact_list(*, version: ModelVersion) -> QuerySet[Artifact]:
    """The version's file tree, ordered by path."""
    return Artifact.objects.filter(version=version).order_by("path")


def artifact_get(*, version: ModelVersion, path: str) -> Artifact:
    """Return one file of a version's tree, or raise NotFound."""
    artifact = Artifact.objects.select_related("blob").filter(version=version, path=path).first()
    if artifact is None:
        raise NotFound(f"Version {version.number} of {version.model.name!r} has no file {path!r}.")
    return artifact


def metric_series(*, model: RegisteredModel) -> dict[str, list[tuple[int, float]]]:
    """Return each metric of a model as (version number, value) pairs in version order."""
    series: dict[str, list[tuple[int, float]]] = {}
    for number, metrics in model.versions.order_by("number").values_list("number", "metrics"):
        for name, value in (metrics or {}).items():
            series.setdefault(name, []).append((number, value))
    return series


def token_list(*, actor) -> QuerySet[AccessToken]:
    """Return the personal API tokens of `actor`, newest first."""
    return AccessToken.objects.filter(user_id=actor.pk).order_by("-created_at", "-pk")


def token_get(*, actor, token_id: int) -> AccessToken:
    """Return one of `actor`'s own tokens, or raise NotFound."""
    token = token_list(actor=actor).select_related("user").filter(pk=token_id).first()
    if token is None:
        raise NotFound("No such token.")
    return token


# ---------------------------------------------------------------------------------- MLflow-style search

MLFLOW_MODEL_ORDER = {"name": "name", "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at",
                      "timestamp": "updated_at"}
MLFLOW_VERSION_ORDER = {"name": "model__name", "version_number": "number", "creation_timestamp": "created_at",
                        "last_updated_timestamp": "updated_at", "timestamp": "created_at"}


def _order_by(clauses: list[str] | None, columns: dict[str, str], default: list[str]) -> list[str]:
    """Translate MLflow order_by clauses ('name DESC', 'version_number') to Django orderings."""
    out: list[str] = []
    for clause in clauses or []:
        parts = clause.split()
        if not parts or len(parts) > 2 or parts[0].lower() not in columns or (
            len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")
        ):
            raise InvalidInput(f"Invalid order_by clause {clause!r}; order by {', '.join(columns)} [ASC|DESC].")
        column = columns[parts[0].lower()]
        out.append(f"-{column}" if len(parts) == 2 and parts[1].upper() == "DESC" else column)
    return [*out, *[d for d in default if d.lstrip("-") not in {o.lstrip("-") for o in out}], "pk"]


def model_search(*, actor, filter_string: str | None = None, order_by: list[str] | None = None
                 ) -> QuerySet[RegisteredModel]:
    """Visible models matching an MLflow filter, in MLflow order_by order (see model_tags_and_aliases)."""
    qs = permissions.visible_models(actor).filter(compile_model_filter(filter_string))
    return qs.order_by(*_order_by(order_by, MLFLOW_MODEL_ORDER, ["name"]))


def model_tags_and_aliases(model_ids: list[int]) -> tuple[dict[int, list[tuple[str, str]]],
                                                           dict[int, list[tuple[str, int]]]]:
    """Tags (key, value) by key and aliases (name, version number) by name, per model, as plain tuples: two
    flat queries, no model instances (search pages show them for up to 1,000 models)."""
    tags: dict[int, list[tuple[str, str]]] = {}
    aliases: dict[int, list[tuple[str, int]]] = {}
    if model_ids:
        for model_id, key, value in (ModelTag.objects.filter(model_id__in=model_ids).order_by("key")
                                     .values_list("model_id", "key", "value")):
            tags.setdefault(model_id, []).append((key, value))
        for model_id, name, number in (Alias.objects.filter(model_id__in=model_ids).order_by("name")
                                       .values_list("model_id", "name", "version__number")):
            aliases.setdefault(model_id, []).append((name, number))
    return tags, aliases


def version_search(*, actor, filter_string: str | None = None, order_by: list[str] | None = None
                   ) -> QuerySet[ModelVersion]:
    """Visible versions matching an MLflow filter, in MLflow order_by order, with tags prefetched."""
    qs = ModelVersion.objects.filter(model__in=permissions.visible_models(actor)).filter(
        compile_version_filter(filter_string))
    return qs.select_related("model", "creator").prefetch_related("tags").order_by(
        *_order_by(order_by, MLFLOW_VERSION_ORDER, ["model__name", "-number"]))


def latest_versions_by_stage(*, model_ids: list[int], stages: list[str] | None = None
                             ) -> dict[int, list[ModelVersion]]:
    """For each model, its highest-numbered version in each stage (or in the given stages), in stage order."""
    if not model_ids:
        return {}
    rows = ModelVersion.objects.filter(model_id__in=model_ids)
    if stages:
        rows = rows.filter(stage__in=stages)
    wanted = {(m, top) for m, _, top in rows.order_by().values_list("model_id", "stage").annotate(top=Max("number"))}
    if not wanted:
        return {}
    numbers = {number for _, number in wanted}
    versions = (ModelVersion.objects.filter(model_id__in={m for m, _ in wanted}, number__in=numbers)
                .select_related("model", "creator").prefetch_related("tags"))
    order = {s: i for i, s in enumerate(Stage.values)}
    out: dict[int, list[ModelVersion]] = {}
    for v in sorted((v for v in versions if (v.model_id, v.number) in wanted), key=lambda v: order[v.stage]):
        out.setdefault(v.model_id, []).append(v)
    return out


def version_queryset_lean() -> QuerySet[ModelVersion]:
    """Versions with only what MLflow-shaped responses show (model, creator, tags, alias names)."""
    return ModelVersion.objects.select_related("model", "creator").prefetch_related(
        "tags", Prefetch("aliases", queryset=Alias.objects.only("id", "name", "version_id"))
    )


def version_find(*, model: RegisteredModel, number: int | str) -> ModelVersion | None:
    """Return version `number` of an already visible model, or None (by alias: alias_find_by_name)."""
    try:
        num = int(str(number))
    except (TypeError, ValueError):
        raise InvalidInput(f"Version must be a positive integer, not {number!r}.")
    version = _one(ModelVersion.objects.select_related("model", "creator").filter(model=model, number=num))
    if version is not None:
        attach_related([version])  # tags and aliases in one query, not two
    return version
