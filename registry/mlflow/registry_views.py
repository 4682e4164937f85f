"""MLflow-compatible model registry routes: registered models, their versions, aliases, stages and tags.

Each reads the request the way the stock client sends it, calls one selector or service and answers in MLflow's
JSON shape. Authorization is the native API's: selectors scope what the actor sees, services check what they
may change.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from rest_framework.request import Request

from registry import selectors, services
from registry.artifacts import sources
from registry.errors import AlreadyExists, InvalidInput, NotFound
from registry.mlflow import shapes
from registry.mlflow.common import Args, invalid, mlflow_view, page_offset, page_token, paged
from registry.models import Stage
from registry.pipeline.scan.trust import ensure_version_servable
from registry.tracking import artifacts as tracking_artifacts
from registry.tracking import logged_models, runs

MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000
# MLflow's SqlAlchemyStore.search_model_versions orders by these when the request names no order.
DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


def _name(args: Args, field: str = "name") -> str:
    """A required model name argument: a string (a JSON number or list is no name, as in MLflow)."""
    raw = args.get(field)
    if raw is not None and not isinstance(raw, str):
        raise InvalidInput(invalid(field, raw))
    return args.str(field, required=True)


def _model(request: Request, name: str) -> Any:
    try:
        return selectors.model_get(actor=request.user, name=name)
    except NotFound:
        raise NotFound(f"Registered Model with name={name} not found")


def _taken(name: str) -> AlreadyExists:
    return AlreadyExists(f"Registered Model (name={name}) already exists.")


def _model_body(model: Any) -> dict[str, Any]:
    return {"registered_model": shapes.registered_models([model])[0]}


@mlflow_view("POST")
def registered_model_create(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/create."""
    tags = args.tags()
    sources.check_tags(tags)
    name = _name(args)
    try:
        model = services.model_create(actor=request.user, name=name, description=args.str("description"), tags=tags)
    except AlreadyExists:
        raise _taken(name)
    return _model_body(model)


@mlflow_view("GET")
def registered_model_get(request: Request, args: Args) -> dict[str, Any]:
    """GET registered-models/get (also the client's prompt guard before most writes)."""
    return _model_body(_model(request, _name(args)))


@mlflow_view("GET", "POST")
def registered_model_search(request: Request, args: Args) -> dict[str, Any]:
    """GET registered-models/search: MLflow filter, order_by, max_results and page_token."""
    qs = selectors.model_search(actor=request.user, filter_string=args.str("filter") or None,
                                order_by=[str(o) for o in args.list("order_by")])
    rows, token = paged(qs, args, default=100, low=0, high=MAX_MODEL_RESULTS)
    out: dict[str, Any] = {}
    if rows:  # proto3 JSON leaves an empty list out
        out["registered_models"] = shapes.registered_models(rows, search=True)
    if token:
        out["next_page_token"] = token
    return out


@mlflow_view("PATCH")
def registered_model_update(request: Request, args: Args) -> dict[str, Any]:
    """PATCH registered-models/update."""
    model = _model(request, _name(args))
    description = args.get("description")
    model = services.model_update(model=model, actor=request.user,
                                  description=None if description is None else str(description))
    return _model_body(model)


@mlflow_view("POST")
def registered_model_rename(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/rename."""
    model = _model(request, _name(args))
    new_name = _name(args, "new_name")
    try:
        model = services.model_rename(model=model, actor=request.user, new_name=new_name)
    except AlreadyExists:
        raise _taken(new_name)
    return _model_body(model)


@mlflow_view("DELETE")
def registered_model_delete(request: Request, args: Args) -> dict[str, Any]:
    """DELETE registered-models/delete (JSON body)."""
    services.model_delete(model=_model(request, _name(args)), actor=request.user)
    return {}


@mlflow_view("POST")
def registered_model_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/set-tag."""
    key = args.str("key", required=True)
    sources.check_tags([key])
    services.model_tag_set(model=_model(request, _name(args)), actor=request.user, key=key,
                           value=args.str("value"))
    return {}


@mlflow_view("DELETE")
def registered_model_delete_tag(request: Request, args: Args) -> dict[str, Any]:
    """DELETE registered-models/delete-tag."""
    model = _model(request, _name(args))
    key = args.str("key", required=True)
    if model.tags.filter(key=key).exists():  # MLflow answers 200 for a tag that is not there
        services.model_tag_delete(model=model, actor=request.user, key=key)
    return {}


@mlflow_view("GET", "POST", "DELETE")
def registered_model_alias(request: Request, args: Args) -> dict[str, Any]:
    """GET resolves, POST sets, DELETE removes an alias (registered-models/alias)."""
    name = _name(args)
    alias = args.str("alias", required=True)
    if request.method == "GET":
        version = selectors.alias_find_by_name(actor=request.user, name=name, alias=alias)
        if version is None:
            _model(request, name)  # RESOURCE_DOES_NOT_EXIST when the model is missing or hidden
            raise InvalidInput(f"Registered model alias {alias} not found.")
        return {"model_version": shapes.version(version)}
    if request.method == "POST":
        number = args.str("version", required=True)
        _check_alias_not_reserved(alias)
        model, version = _model_and_version(request, name, number)
        services.alias_set(model=model, alias=alias, version=version, actor=request.user)
        return {}
    model = _model(request, name)
    if model.aliases.filter(name=alias).exists():  # MLflow answers 200 for an alias that is not there
        services.alias_delete(model=model, alias=alias, actor=request.user)
    return {}


def _check_alias_not_reserved(alias: str) -> None:
    """MLflow's reserved alias names, with its wording ("latest" and "v<number>" name versions)."""
    if alias.lower() == "latest":
        raise InvalidInput("'latest' alias name (case insensitive) is reserved.")
    if re.fullmatch(r"[vV]\d+", alias):
        raise InvalidInput(f"Version alias name '{alias}' is reserved.")


@mlflow_view("POST", "GET")
def registered_model_latest_versions(request: Request, args: Args) -> dict[str, Any]:
    """POST (or GET) registered-models/get-latest-versions: the newest version in each (requested) stage."""
    model = _model(request, _name(args))
    stages = [s for s in (str(x) for x in args.list("stages")) if s]
    wanted = [_stage(s) for s in stages] or None
    latest = selectors.latest_versions_by_stage(model_ids=[model.pk], stages=wanted).get(model.pk, [])
    fresh = selectors.version_queryset_lean().filter(pk__in=[v.pk for v in latest])
    by_pk = {v.pk: v for v in fresh}
    trust = shapes.versions_trust(list(by_pk))
    found = [shapes.version(by_pk[v.pk], trust=trust) for v in sorted(latest, key=lambda v: v.number)]
    return {"model_versions": found} if found else {}


def _stage(raw: str) -> str:
    for choice in Stage.values:
        if raw.lower() == choice.lower():
            return choice
    raise InvalidInput(f"Invalid Model Version stage: {raw}. Value must be one of {', '.join(Stage.values)}.")


# ---------------------------------------------------------------------------------------- model versions


def _model_and_version(request: Request, name: str, number: str) -> tuple[Any, Any]:
    """The model and its version `number`, with MLflow's answers: not-found names the version either way."""
    if not re.fullmatch(r"\s*[-+]?[0-9]+\s*", number):  # ASCII digits only (MLflow takes any Unicode digit)
        raise InvalidInput(f"Parameter 'version' must be an integer, got '{number}'.")
    not_found = NotFound(f"Model Version (name={name}, version={number}) not found")
    try:
        model = selectors.model_get(actor=request.user, name=name)
    except NotFound:
        raise not_found
    version = selectors.version_find(model=model, number=number) if int(number) > 0 else None
    if version is None:
        raise not_found
    return model, version


def _version(request: Request, args: Args) -> Any:
    return _model_and_version(request, _name(args), args.str("version", required=True))[1]


def _version_body(version: Any) -> dict[str, Any]:
    return {"model_version": shapes.version(selectors.version_queryset_lean().get(pk=version.pk))}


@mlflow_view("POST")
def model_version_create(request: Request, args: Args) -> dict[str, Any]:
    """POST model-versions/create: validate the source, inherit files and provenance from it, answer READY."""
    model = _model(request, _name(args))
    source = args.str("source", required=True)
    if not args.str("model_id"):  # with a model_id MLflow checks the source against the model instead
        _check_run_named_by_source(source, args.str("run_id"))
    version = services.version_create_from_source(
        model=model, actor=request.user, source_uri=source, run_id=args.str("run_id"),
        model_id=args.str("model_id"), description=args.str("description"), tags=args.tags(),
    )
    return {"model_version": shapes.version(version)}  # version_create hands back everything it wrote


def _check_run_named_by_source(source: str, run_id: str) -> None:
    """MLflow 3.17.2's rule: a runs:/ source comes with `run_id`, and it is the run the source names."""
    if not source.startswith("runs:"):
        return
    parsed = urllib.parse.urlparse(source)
    named = parsed.path.lstrip("/").split("/", 1)[0]
    if parsed.netloc or not run_id or named != run_id:
        raise InvalidInput(f"Invalid model version source: '{source}'. The run_id request parameter must identify "
                           "the resource that contains the source.")


@mlflow_view("GET")
def model_version_get(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/get."""
    return {"model_version": shapes.version(_version(request, args))}


@mlflow_view("GET", "POST")
def model_version_search(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/search (no aliases in results, as MLflow)."""
    qs = selectors.version_search(actor=request.user, filter_string=args.str("filter") or None,
                                  order_by=[str(o) for o in args.list("order_by")] or DEFAULT_VERSION_ORDER)
    size = args.int("max_results", default=10_000, high=MAX_VERSION_RESULTS)
    offset = page_offset(args.str("page_token"))
    rows = shapes.version_rows(qs.prefetch_related(None), offset=offset, limit=size + 1)
    token = None
    if len(rows) > size:
        rows = rows[:size]
        token = page_token(offset + size)
    out: dict[str, Any] = {"model_versions": rows} if rows else {}
    if token:
        out["next_page_token"] = token
    return out


@mlflow_view("PATCH")
def model_version_update(request: Request, args: Args) -> dict[str, Any]:
    """PATCH model-versions/update (description)."""
    version = _version(request, args)
    description = args.get("description")
    if description is not None:
        version = services.version_update(version=version, actor=request.user, description=str(description))
    return _version_body(version)


@mlflow_view("POST")
def model_version_transition(request: Request, args: Args) -> dict[str, Any]:
    """POST model-versions/transition-stage, with archive_existing_versions."""
    version = _version(request, args)
    raw_stage = args.str("stage", required=True)
    stage = _stage(raw_stage)
    archive = args.bool("archive_existing_versions")
    if archive and stage not in (Stage.STAGING, Stage.PRODUCTION):
        raise InvalidInput("Model version transition cannot archive existing model versions because "
                           f"'{raw_stage}' is not an Active stage. Valid stages are ['Staging', 'Production']")
    version = services.version_transition_stage(version=version, actor=request.user, stage=stage,
                                                 archive_existing_versions=archive)
    return _version_body(version)


@mlflow_view("DELETE")
def model_version_delete(request: Request, args: Args) -> dict[str, Any]:
    """DELETE model-versions/delete (JSON body)."""
    services.version_delete(version=_version(request, args), actor=request.user)
    return {}


@mlflow_view("POST")
def model_version_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST model-versions/set-tag."""
    key = args.str("key", required=True)
    sources.check_tags([key])
    services.version_tag_set(version=_version(request, args), actor=request.user, key=key, value=args.str("value"))
    return {}


@mlflow_view("DELETE")
def model_version_delete_tag(request: Request, args: Args) -> dict[str, Any]:
    """DELETE model-versions/delete-tag."""
    version = _version(request, args)
    key = args.str("key", required=True)
    if version.tags.filter(key=key).exists():  # MLflow answers 200 for a tag that is not there
        services.version_tag_delete(version=version, actor=request.user, key=key)
    return {}


@mlflow_view("GET")
def model_version_download_uri(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/get-download-uri: the version's own files when it has any (refused while any is quarantined
    or awaits its scan), else where its source is."""
    version = _version(request, args)
    if version.artifacts.exists():
        ensure_version_servable(version)  # no address for bytes that are withheld: the client shows why
        return {"artifact_uri": tracking_artifacts.version_artifact_uri(version)}
    source = version.source_uri
    if source.startswith("models:/m-"):
        lm = logged_models.logged_models_visible(request.user).filter(pk=source[len("models:/"):]).first()
        if lm is not None:
            return {"artifact_uri": tracking_artifacts.logged_model_artifact_uri(lm)}
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/"):].partition("/")
        run = runs.runs_visible(request.user).filter(pk=run_id).first()
        if run is not None:
            return {"artifact_uri": f"{tracking_artifacts.run_artifact_uri(run)}/{path}".rstrip("/")}
    return {"artifact_uri": source}
