"""Reads shared by pages and APIs, scoped to the actor and written to run in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Max, OuterRef, Prefetch, QuerySet, Subquery, prefetch_related_objects
from django.db.models.functions import Coalesce

from registry import caching, permissions, validation
from registry.artifacts.paths import validate_artifact_path
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
from registry.search.compiler import compile_model_filter, compile_version_filter
from registry.search.words import split_words, version_words_q


def _one(qs: QuerySet) -> Any:
    """Return the single row a unique lookup matches, or None (no ORDER BY, unlike .first())."""
    rows = list(qs.order_by()[:1])
    return rows[0] if rows else None


def model_list(*, actor, filters: Mapping[str, Any] | None = None) -> QuerySet[RegisteredModel]:
    """Return the models `actor` may see matching `filters` (the ModelFilter fields: filter, stage, tag, order),
    with what list pages show, prefetched; invalid filters raise InvalidInput."""
    # Per-row subqueries, not a join and GROUP BY: a page of 100 needs only its own rows counted, so a search that
    # matches thousands of models walks the name index and stops at the page's end.
    versions = ModelVersion.objects.filter(model=OuterRef("pk")).order_by().values("model")
    qs = (
        permissions.visible_models(actor)
        .annotate(version_count=Coalesce(Subquery(versions.annotate(n=Count("pk")).values("n")), 0),
                  latest_version=Subquery(versions.annotate(top=Max("number")).values("top")))
        .select_related("owner", "successor")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .order_by("name", "pk")
    )
    return _model_filter(qs, filters)


def _model_filter(qs: QuerySet[RegisteredModel], filters: Mapping[str, Any] | None) -> QuerySet[RegisteredModel]:
    filterset = ModelFilter(filters or {}, queryset=qs)
    if not filterset.is_valid():
        raise InvalidInput(filterset.error_message())
    return filterset.qs


# What the API's model list shows of each model, as plain rows: a page holds up to 1,000 models, and building model
# instances with prefetched managers cost several times what the database did.
MODEL_ROW_FIELDS = ("pk", "name", "description", "owner__username", "last_version_number", "created_at",
                    "updated_at", "deprecated", "deprecation_reason", "successor__name")


def model_rows(*, actor, filters: Mapping[str, Any] | None = None) -> QuerySet:
    """Return the models `actor` may see matching `filters` (as model_list) as rows of MODEL_ROW_FIELDS, ordered by
    name; model_rows_complete adds a page's tags and aliases. Invalid filters raise InvalidInput."""
    qs = _model_filter(permissions.visible_models(actor).order_by("name", "pk"), filters)
    return qs.values(*MODEL_ROW_FIELDS)


def model_rows_complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each row of a page of model_rows its `tags` (key: value) and `aliases` (name: version number), in two
    queries for the page whatever its size."""
    tags, aliases = model_tags_and_aliases([row["pk"] for row in rows])
    for row in rows:
        row["tags"] = dict(tags.get(row["pk"], ()))
        row["aliases"] = dict(aliases.get(row["pk"], ()))
    return rows


# A model's version counter and last-update time change with every version registered. Cached reads leave them
# out (deferred: they load, fresh, when read), so that registering a version retires nothing (registry.caching).
MODEL_VOLATILE = ("last_version_number", "updated_at")


def model_get(*, actor, name: str) -> RegisteredModel:
    """Return the model named `name` if `actor` may see it, else raise NotFound."""
    # The row comes from the cache while no event on the model has changed it; the role check runs every time
    # (no query for staff and owners, one otherwise). The successor, when there is one, loads when read.
    model = None if name is None else caching.read(str(name), ("model",), lambda: _one(
        RegisteredModel.objects.select_related("owner").defer(*MODEL_VOLATILE).filter(name=str(name))))
    if model is None or not permissions.can_view(actor, model):
        raise NotFound(f"Registered model {name!r} not found.")
    return model


def version_queryset() -> QuerySet[ModelVersion]:
    """Versions with what detail and list views show."""
    return _with_version_related(ModelVersion.objects.all())


def _with_version_related(qs: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    return qs.select_related("model", "creator", "successor", "successor__model").prefetch_related(
        "tags", "datasets", Prefetch("aliases", queryset=Alias.objects.only("id", "name", "version_id", "model_id"))
    )


def version_list(*, actor, model: RegisteredModel | None = None, filter_string: str | None = None,
                 words: str | None = None) -> QuerySet[ModelVersion]:
    """Return versions `actor` may see (of one model, or across models) matching a filter expression and plain
    words (model name, description or tag value, case-insensitive), newest first."""
    matches = _version_matches(actor=actor, model=model, filter_string=filter_string, words=words)
    return _with_version_related(matches).defer("search_text")  # as long as a description, and no page shows it


def _version_matches(*, actor, model: RegisteredModel | None, filter_string: str | None,
                     words: str | None) -> QuerySet[ModelVersion]:
    if model is not None:
        qs = ModelVersion.objects.filter(model=model)
    elif permissions.sees_every_model(actor):
        # No `model IN (every model)`: without it the database walks the model name index into each model's
        # versions and stops at the page's end, where the IN made SQLite sort every version first.
        qs = ModelVersion.objects.all()
    else:
        qs = ModelVersion.objects.filter(model__in=permissions.visible_models(actor))
    qs = qs.filter(compile_version_filter(filter_string))
    if words:
        qs = qs.filter(version_words_q(split_words(words)))
    return qs.order_by("model__name", "-number")


# What the API's version lists show of each version, as plain rows (see MODEL_ROW_FIELDS).
VERSION_ROW_FIELDS = ("pk", "model__name", "number", "semver", "stage", "status", "status_message", "source_uri",
                      "run_id", "description", "creator__username", "created_at", "updated_at", "metrics", "params",
                      "signature", "code_repository", "code_commit", "environment", "deprecated",
                      "deprecation_reason", "successor__model__name", "successor__number")


def version_rows(*, actor, model: RegisteredModel | None = None, filter_string: str | None = None,
                 words: str | None = None) -> QuerySet:
    """version_list as rows of VERSION_ROW_FIELDS; version_rows_complete adds a page's tags, datasets and aliases."""
    return _version_matches(actor=actor, model=model, filter_string=filter_string,
                            words=words).values(*VERSION_ROW_FIELDS)


def version_rows_complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each row of a page of version_rows its `tags` (key: value, by key), `datasets` (by role and name) and
    `aliases` (names, sorted), in three queries for the page whatever its size."""
    ids = [row["pk"] for row in rows]
    tags: dict[int, dict[str, str]] = {}
    datasets: dict[int, list[dict[str, str]]] = {}
    aliases: dict[int, list[str]] = {}
    if ids:
        for version_id, key, value in (VersionTag.objects.filter(version_id__in=ids).order_by("key")
                                       .values_list("version_id", "key", "value")):
            tags.setdefault(version_id, {})[key] = value
        for version_id, name, uri, digest, role in (
                VersionDataset.objects.filter(version_id__in=ids).order_by("role", "name")
                .values_list("version_id", "name", "uri", "digest", "role")):
            datasets.setdefault(version_id, []).append({"name": name, "uri": uri, "digest": digest, "role": role})
        for version_id, name in Alias.objects.filter(version_id__in=ids).order_by("name").values_list("version_id",
                                                                                                     "name"):
            aliases.setdefault(version_id, []).append(name)
    for row in rows:
        row["tags"] = tags.get(row["pk"], {})
        row["datasets"] = datasets.get(row["pk"], [])
        row["aliases"] = aliases.get(row["pk"], [])
    return rows


def version_get(*, model: RegisteredModel, number: int | str) -> ModelVersion:
    """Return version `number` of an already visible model, or raise NotFound (InvalidInput unless `number` is a
    positive integer or its ASCII digits)."""
    num = validation.version_number(number)
    version = _one(version_queryset().filter(model=model, number=num))
    if version is None:
        raise NotFound(f"Model {model.name!r} has no version {num}.")
    return version


def version_resolve(*, model: RegisteredModel, ref: str) -> ModelVersion:
    """Resolve '3', 'v3', 'latest' or an alias name to a version of a visible model (digits are ASCII digits:
    '³' or '٣' name no version)."""
    if validation.VERSION_NUMBER.fullmatch(ref):
        return version_get(model=model, number=ref)
    if ref.lower() == "latest":
        version = version_queryset().filter(model=model).order_by("-number").first()
        if version is None:
            raise NotFound(f"Model {model.name!r} has no versions.")
        return version
    if len(ref) > 1 and ref[0] in "vV" and validation.VERSION_NUMBER.fullmatch(ref[1:]):
        return version_get(model=model, number=ref[1:])
    return alias_resolve(model=model, alias=ref)


def alias_resolve(*, model: RegisteredModel, alias: str) -> ModelVersion:
    """Return the version `alias` points at, or raise NotFound."""
    version = _one(version_queryset().filter(model=model, aliases__name=alias))
    if version is None:
        raise NotFound(f"Model {model.name!r} has no alias {alias!r}.")
    return version


def alias_find_by_name(*, actor, name: str, alias: str) -> ModelVersion | None:
    """The version `name@alias` points at if `actor` may see it, else None (the hot path of serving clients and
    MLflow's get-by-alias: from the cache while no event on the model has changed it, then the role check)."""
    if name is None or alias is None:
        return None
    name, alias = str(name), str(alias)
    version = caching.read(name, ("alias", alias), lambda: _one(
        _version_cached_queryset().filter(model__name=name, aliases__name=alias)))
    if version is None or not permissions.can_view(actor, version.model):
        return None
    return version


def _version_cached_queryset() -> QuerySet[ModelVersion]:
    """version_queryset() for the cache: the model without its volatile columns, no successor join (a successor,
    rare, loads when read, so another model's rename never leaves a cached copy of its name behind)."""
    return ModelVersion.objects.select_related("model", "creator").defer(
        *(f"model__{name}" for name in MODEL_VOLATILE)).prefetch_related(
        "tags", "datasets", Prefetch("aliases", queryset=Alias.objects.only("id", "name", "version_id", "model_id")))


def alias_resolve_by_name(*, actor, name: str, alias: str) -> ModelVersion:
    """Resolve `name@alias` for `actor`, or raise the precise NotFound (no such model, or no such alias)."""
    version = alias_find_by_name(actor=actor, name=name, alias=alias)
    if version is None:
        alias_resolve(model=model_get(actor=actor, name=name), alias=alias)  # raises the precise NotFound
    return version


def version_prefetch_new(version: ModelVersion, *, tags: bool, datasets: bool) -> None:
    """Prefetch a just-created version's tags, datasets and aliases, querying only the relations it was created
    with: the others are known to be empty (a new version has no alias), so they are filled without a query."""
    prefetch_related_objects(
        [version],
        "tags" if tags else Prefetch("tags", queryset=VersionTag.objects.order_by().none()),
        "datasets" if datasets else Prefetch("datasets", queryset=VersionDataset.objects.order_by().none()),
        Prefetch("aliases", queryset=Alias.objects.order_by().none()),
    )


def artifact_list(*, version: ModelVersion) -> QuerySet[Artifact]:
    """The version's file tree, ordered by path."""
    return Artifact.objects.filter(version=version).order_by("path")


def artifact_get(*, version: ModelVersion, path: str) -> Artifact:
    """Return one file of a version's tree, or raise NotFound (InvalidInput for a path no upload could store)."""
    path = validate_artifact_path(path)
    artifact = Artifact.objects.select_related("blob").filter(version=version, path=path).first()
    if artifact is None:
        raise NotFound(f"Version {version.number} of {version.model.name!r} has no file {path!r}.")
    return artifact


def artifact_download_get(*, version: ModelVersion, path: str) -> Artifact:
    """Return one file of a version whose bytes may be handed out, or raise NotFound, or Quarantined naming why its
    bytes are withheld (every download route, and any redirect to the store, asks here first)."""
    from registry.pipeline.scan.trust import ensure_servable

    artifact = artifact_get(version=version, path=path)
    artifact.version = version  # the model is already known: the trust check asks no more about it
    ensure_servable(artifact)
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


def model_tags_and_aliases(model_ids: list[int], *, versioned_ids: list[int] | None = None
                           ) -> tuple[dict[int, list[tuple[str, str]]], dict[int, list[tuple[str, int]]]]:
    """Tags (key, value) by key and aliases (name, version number) by name, per model, as plain tuples: two
    flat queries, no model instances (search pages show them for up to 1,000 models). Aliases are looked up
    only for `versioned_ids` when given (the models that ever had a version: no other can have an alias)."""
    tags: dict[int, list[tuple[str, str]]] = {}
    aliases: dict[int, list[tuple[str, int]]] = {}
    alias_ids = model_ids if versioned_ids is None else versioned_ids
    if model_ids:
        for model_id, key, value in (ModelTag.objects.filter(model_id__in=model_ids).order_by("key")
                                     .values_list("model_id", "key", "value")):
            tags.setdefault(model_id, []).append((key, value))
    if alias_ids:
        for model_id, name, number in (Alias.objects.filter(model_id__in=alias_ids).order_by("name")
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
    num = validation.version_number(number)
    return _one(version_queryset_lean().filter(model=model, number=num))
