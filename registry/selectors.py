"""Reads shared by pages and APIs, scoped to the actor and written to run in a fixed number of queries."""

from __future__ import annotations

from django.db.models import Count, Max, Prefetch, QuerySet

from . import permissions
from .errors import InvalidInput, NotFound
from .models import AccessToken, Alias, Artifact, ModelVersion, RegisteredModel, Stage
from .search import compile_model_filter, compile_version_filter

MODEL_ORDERING = {
    "name": "name", "-name": "-name",
    "created": "created_at", "-created": "-created_at",
    "updated": "updated_at", "-updated": "-updated_at",
}


def model_list(
    *, actor, filter_string: str | None = None, stage: str | None = None, tag: str | None = None,
    order: str = "name",
) -> QuerySet[RegisteredModel]:
    """Return the models `actor` may see matching the filter, with what list pages show, prefetched."""
    qs = permissions.visible_models(actor).filter(compile_model_filter(filter_string))
    if stage:
        if stage not in Stage.values:
            raise InvalidInput(f"Unknown stage {stage!r}.")
        qs = qs.filter(versions__stage=stage).distinct()
    if tag:
        key, _, value = tag.partition("=")
        qs = qs.filter(tags__key=key, **({"tags__value": value} if value else {}))
    if order not in MODEL_ORDERING:
        raise InvalidInput(f"Unknown ordering {order!r}; use one of {', '.join(MODEL_ORDERING)}.")
    return (
        qs.annotate(version_count=Count("versions", distinct=True), latest_version=Max("versions__number"))
        .select_related("owner", "successor")
        .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
        .order_by(MODEL_ORDERING[order], "pk")
    )


def model_get(*, actor, name: str) -> RegisteredModel:
    """Return the model named `name` if `actor` may see it, else raise NotFound."""
    model = permissions.visible_models(actor).select_related("owner", "successor").filter(name=name).first()
    if model is None:
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
    version = version_queryset().filter(model=model, number=num).first()
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
    version = version_queryset().filter(model=model, aliases__name=alias).first()
    if version is None:
        raise NotFound(f"Model {model.name!r} has no alias {alias!r}.")
    return version


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
