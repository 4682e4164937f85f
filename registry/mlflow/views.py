"""MLflow-compatible endpoints: read the request the way the stock client sends it, call one selector or service,
answer in MLflow's JSON shape. Authorization is the native API's: selectors scope what the actor sees,
services check what they may change."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors, services
from registry.artifacts import sources
from registry.artifacts.formats import content_type_for
from registry.artifacts.storage import blob_open, iter_range, spool_stream
from registry.errors import Forbidden, InvalidInput, NotFound, UploadTooLarge
from registry.mlflow import errors, shapes
from registry.models import LifecycleStage, LoggedModelStatus, Stage
from registry.tracking import services as tracking

MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000
MAX_EXPERIMENT_RESULTS = 50_000


class MlflowApi(APIView):
    """Base for MLflow routes: JSON bodies (also on DELETE), MLflow's error shape."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = None  # MLflow's own API, documented by MLflow; kept out of the native OpenAPI schema

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        """JSON whatever the Accept header asks, as MLflow's server answers (no negotiation to run)."""
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return errors.exception_handler


class Args:
    """The request message: query parameters on GET, the JSON body otherwise (query parameters as fallback)."""

    def __init__(self, request: Request) -> None:
        self.query = request.query_params
        if request.method == "GET":
            self.body: dict[str, Any] = {}
        else:
            body = request.data if request.content_type and request.content_type.startswith("application/json") else {}
            if not isinstance(body, dict):
                raise InvalidInput("The request body must be a JSON object.")
            self.body = body

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.body:
            return self.body[name]
        values = self.query.getlist(name)
        if not values:
            return default
        return values if len(values) > 1 else values[0]

    def str(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInput(f"Missing value for required parameter '{name}'.")
            return default
        if isinstance(value, list) or isinstance(value, dict):
            raise InvalidInput(f"Invalid value for parameter '{name}': expected a string.")
        return str(value)

    def list(self, name: str) -> list[Any]:
        if name in self.body:
            value = self.body[name]
            if value is None:
                return []
            if not isinstance(value, list):
                raise InvalidInput(f"Invalid value for parameter '{name}': expected a list.")
            return value
        return self.query.getlist(name)

    def bool(self, name: str) -> bool:
        value = self.get(name, False)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", ""):
            return value.lower() == "true"
        raise InvalidInput(f"Invalid value {value!r} for parameter '{name}': expected true or false.")

    def int(self, name: str, *, default: int | None = None, low: int = 1, high: int | None = None) -> int | None:
        value = self.get(name)
        if value in (None, ""):
            return default
        try:
            number = int(str(value))
        except ValueError:
            raise InvalidInput(f"Invalid value {value!r} for parameter '{name}' supplied: expected an integer.")
        if number < low or (high is not None and number > high):
            raise InvalidInput(f"Invalid value \"{number}\" for parameter '{name}' supplied: it must be "
                               f"between {low} and {high}.")
        return number

    def tags(self, name: str = "tags") -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.list(name):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise InvalidInput(f"Each entry of '{name}' must be an object with a string key.")
            out[item["key"]] = "" if item.get("value") is None else str(item["value"])
        return out


def mlflow_view(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn `fn(request, args, **url_kwargs) -> dict` into a view answering `methods` with MLflow JSON."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: APIView, request: Request, **kwargs: Any) -> Response:
            return Response(fn(request, Args(request), **kwargs))

        attrs: dict[str, Any] = {m.lower(): handler for m in methods}
        attrs["__doc__"] = fn.__doc__
        attrs["__module__"] = fn.__module__
        return type(fn.__name__, (MlflowApi,), attrs).as_view()

    return wrap


def _page_offset(token: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode() + b"===", validate=False))
        offset = int(data["offset"])
    except (ValueError, TypeError, KeyError):
        raise InvalidInput("Invalid page token, could not base64-decode")
    if offset < 0:
        raise InvalidInput("Invalid page token: negative offset")
    return offset


def _paged(qs: Any, args: Args, *, default: int, high: int) -> tuple[list[Any], str | None]:
    size = args.int("max_results", default=default, high=high)
    offset = _page_offset(args.str("page_token"))
    rows = list(qs[offset: offset + size + 1])
    token = None
    if len(rows) > size:
        rows = rows[:size]
        token = base64.b64encode(json.dumps({"offset": offset + size}).encode()).decode()
    return rows, token


# ------------------------------------------------------------------------------------- registered models


def _model(request: Request, name: str) -> Any:
    return selectors.model_get(actor=request.user, name=name)


def _model_body(model: Any) -> dict[str, Any]:
    return {"registered_model": shapes.registered_models([model])[0]}


@mlflow_view("POST")
def registered_model_create(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/create."""
    tags = args.tags()
    sources.check_tags(tags)
    model = services.model_create(actor=request.user, name=args.str("name", required=True),
                                  description=args.str("description"), tags=tags)
    return _model_body(model)


@mlflow_view("GET")
def registered_model_get(request: Request, args: Args) -> dict[str, Any]:
    """GET registered-models/get (also the client's prompt guard before most writes)."""
    return _model_body(_model(request, args.str("name", required=True)))


@mlflow_view("GET", "POST")
def registered_model_search(request: Request, args: Args) -> dict[str, Any]:
    """GET registered-models/search: MLflow filter, order_by, max_results and page_token."""
    qs = selectors.model_search(actor=request.user, filter_string=args.str("filter") or None,
                                order_by=[str(o) for o in args.list("order_by")])
    rows, token = _paged(qs, args, default=100, high=MAX_MODEL_RESULTS)
    out: dict[str, Any] = {"registered_models": shapes.registered_models(rows)}
    if token:
        out["next_page_token"] = token
    return out


@mlflow_view("PATCH")
def registered_model_update(request: Request, args: Args) -> dict[str, Any]:
    """PATCH registered-models/update."""
    model = _model(request, args.str("name", required=True))
    description = args.get("description")
    model = services.model_update(model=model, actor=request.user,
                                  description=None if description is None else str(description))
    return _model_body(model)


@mlflow_view("POST")
def registered_model_rename(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/rename."""
    model = _model(request, args.str("name", required=True))
    model = services.model_rename(model=model, actor=request.user, new_name=args.str("new_name", required=True))
    return _model_body(model)


@mlflow_view("DELETE")
def registered_model_delete(request: Request, args: Args) -> dict[str, Any]:
    """DELETE registered-models/delete (JSON body)."""
    services.model_delete(model=_model(request, args.str("name", required=True)), actor=request.user)
    return {}


@mlflow_view("POST")
def registered_model_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST registered-models/set-tag."""
    key = args.str("key", required=True)
    sources.check_tags([key])
    services.model_tag_set(model=_model(request, args.str("name", required=True)), actor=request.user, key=key,
                           value=args.str("value"))
    return {}


@mlflow_view("DELETE")
def registered_model_delete_tag(request: Request, args: Args) -> dict[str, Any]:
    """DELETE registered-models/delete-tag."""
    services.model_tag_delete(model=_model(request, args.str("name", required=True)), actor=request.user,
                              key=args.str("key", required=True))
    return {}


@mlflow_view("GET", "POST", "DELETE")
def registered_model_alias(request: Request, args: Args) -> dict[str, Any]:
    """GET resolves, POST sets, DELETE removes an alias (registered-models/alias)."""
    name = args.str("name", required=True)
    alias = args.str("alias", required=True)
    if request.method == "GET":
        version = selectors.alias_find_by_name(actor=request.user, name=name, alias=alias)
        if version is None:
            _model(request, name)  # RESOURCE_DOES_NOT_EXIST when the model is missing or hidden
            raise InvalidInput(f"Registered model alias {alias} not found.")
        return {"model_version": shapes.version(version)}
    model = _model(request, name)
    if request.method == "POST":
        version = selectors.version_get(model=model, number=args.str("version", required=True))
        services.alias_set(model=model, alias=alias, version=version, actor=request.user)
        return {}
    services.alias_delete(model=model, alias=alias, actor=request.user)
    return {}


@mlflow_view("POST", "GET")
def registered_model_latest_versions(request: Request, args: Args) -> dict[str, Any]:
    """POST (or GET) registered-models/get-latest-versions: the newest version in each (requested) stage."""
    model = _model(request, args.str("name", required=True))
    stages = [s for s in (str(x) for x in args.list("stages")) if s]
    wanted = [_stage(s) for s in stages] or None
    latest = selectors.latest_versions_by_stage(model_ids=[model.pk], stages=wanted).get(model.pk, [])
    fresh = selectors.version_queryset_lean().filter(pk__in=[v.pk for v in latest])
    by_pk = {v.pk: v for v in fresh}
    return {"model_versions": [shapes.version(by_pk[v.pk]) for v in latest]}


def _stage(raw: str) -> str:
    for choice in Stage.values:
        if raw.lower() == choice.lower():
            return choice
    raise InvalidInput(f"Invalid Model Version stage: {raw}. Value must be one of {', '.join(Stage.values)}.")


# ---------------------------------------------------------------------------------------- model versions


def _version(request: Request, args: Args) -> Any:
    model = _model(request, args.str("name", required=True))
    number = args.str("version", required=True)
    version = selectors.version_find(model=model, number=number)
    if version is None:
        raise NotFound(f"Model Version (name={model.name}, version={number}) not found")
    return version


def _version_body(version: Any) -> dict[str, Any]:
    return {"model_version": shapes.version(selectors.version_queryset_lean().get(pk=version.pk))}


@mlflow_view("POST")
def model_version_create(request: Request, args: Args) -> dict[str, Any]:
    """POST model-versions/create: validate the source, inherit files and provenance from it, answer READY."""
    model = _model(request, args.str("name", required=True))
    version = services.version_create_from_source(
        model=model, actor=request.user, source_uri=args.str("source", required=True), run_id=args.str("run_id"),
        model_id=args.str("model_id"), description=args.str("description"), tags=args.tags(),
    )
    return {"model_version": shapes.version(version)}  # version_create hands back everything it wrote


@mlflow_view("GET")
def model_version_get(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/get."""
    return {"model_version": shapes.version(_version(request, args))}


@mlflow_view("GET", "POST")
def model_version_search(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/search (no aliases in results, as MLflow)."""
    qs = selectors.version_search(actor=request.user, filter_string=args.str("filter") or None,
                                  order_by=[str(o) for o in args.list("order_by")])
    size = args.int("max_results", default=10_000, high=MAX_VERSION_RESULTS)
    offset = _page_offset(args.str("page_token"))
    rows = shapes.version_rows(qs.prefetch_related(None), offset=offset, limit=size + 1)
    token = None
    if len(rows) > size:
        rows = rows[:size]
        token = base64.b64encode(json.dumps({"offset": offset + size}).encode()).decode()
    out: dict[str, Any] = {"model_versions": rows}
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
    version = services.version_transition_stage(
        version=_version(request, args), actor=request.user, stage=_stage(args.str("stage", required=True)),
        archive_existing_versions=args.bool("archive_existing_versions"),
    )
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
    services.version_tag_delete(version=_version(request, args), actor=request.user,
                                key=args.str("key", required=True))
    return {}


@mlflow_view("GET")
def model_version_download_uri(request: Request, args: Args) -> dict[str, Any]:
    """GET model-versions/get-download-uri: the version's own files when it has any, else where its source is."""
    version = _version(request, args)
    if version.artifacts.exists():
        return {"artifact_uri": tracking.version_artifact_uri(version)}
    source = version.source_uri
    if source.startswith("models:/m-"):
        lm = tracking.logged_models_visible(request.user).filter(pk=source[len("models:/"):]).first()
        if lm is not None:
            return {"artifact_uri": tracking.logged_model_artifact_uri(lm)}
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/"):].partition("/")
        run = tracking.runs_visible(request.user).filter(pk=run_id).first()
        if run is not None:
            return {"artifact_uri": f"{tracking.run_artifact_uri(run)}/{path}".rstrip("/")}
    return {"artifact_uri": source}


# ------------------------------------------------------------------------------------------- experiments


@mlflow_view("GET")
def experiment_get_by_name(request: Request, args: Args) -> dict[str, Any]:
    """GET experiments/get-by-name."""
    exp = tracking.experiment_get_by_name(actor=request.user, name=args.str("experiment_name", required=True))
    return {"experiment": shapes.experiment(exp)}


@mlflow_view("POST")
def experiment_create(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/create."""
    exp = tracking.experiment_create(actor=request.user, name=args.str("name", required=True),
                                     artifact_location=args.str("artifact_location"), tags=args.tags())
    return {"experiment_id": str(exp.pk)}


@mlflow_view("GET")
def experiment_get(request: Request, args: Args) -> dict[str, Any]:
    """GET experiments/get."""
    exp = tracking.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    return {"experiment": shapes.experiment(exp)}


@mlflow_view("POST", "GET")
def experiment_search(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/search."""
    qs = tracking.experiment_search(actor=request.user, filter_string=args.str("filter") or None,
                                    view_type=args.str("view_type", default="ACTIVE_ONLY"))
    rows, token = _paged(qs, args, default=1000, high=MAX_EXPERIMENT_RESULTS)
    out: dict[str, Any] = {"experiments": [shapes.experiment(e) for e in rows]}
    if token:
        out["next_page_token"] = token
    return out


def _owned_experiment(request: Request, args: Args) -> Any:
    exp = tracking.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    if exp.owner_id != request.user.pk and not request.user.is_staff:
        raise Forbidden("Only the experiment's owner may change it.")
    return exp


@mlflow_view("POST")
def experiment_update(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/update (rename)."""
    tracking.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               new_name=args.str("new_name", required=True))
    return {}


@mlflow_view("POST")
def experiment_delete(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/delete (soft)."""
    tracking.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               lifecycle_stage=LifecycleStage.DELETED)
    return {}


@mlflow_view("POST")
def experiment_restore(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/restore."""
    tracking.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               lifecycle_stage=LifecycleStage.ACTIVE)
    return {}


@mlflow_view("POST")
def experiment_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/set-experiment-tag."""
    tracking.experiment_tag_set(actor=request.user, experiment=_owned_experiment(request, args),
                                key=args.str("key", required=True), value=args.str("value"))
    return {}


# -------------------------------------------------------------------------------------------------- runs


def _run(request: Request, args: Args) -> Any:
    return tracking.run_get(actor=request.user, run_id=args.str("run_id") or args.str("run_uuid", required=True))


@mlflow_view("POST")
def run_create(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/create."""
    exp = tracking.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", default="0"))
    run = tracking.run_create(actor=request.user, experiment=exp, start_time=args.get("start_time"),
                              run_name=args.str("run_name"), tags=args.tags())
    return {"run": shapes.run(run)}


@mlflow_view("GET")
def run_get(request: Request, args: Args) -> dict[str, Any]:
    """GET runs/get."""
    return {"run": shapes.run(_run(request, args))}


@mlflow_view("POST")
def run_update(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/update (status, end time, name)."""
    run = tracking.run_update(actor=request.user, run=_run(request, args), status=args.str("status") or None,
                              end_time=args.get("end_time"), run_name=args.str("run_name") or None)
    return {"run_info": shapes.run_info(run)}


@mlflow_view("POST")
def run_delete(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/delete (soft)."""
    tracking.run_set_lifecycle(actor=request.user, run=_run(request, args), stage=LifecycleStage.DELETED)
    return {}


@mlflow_view("POST")
def run_restore(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/restore."""
    tracking.run_set_lifecycle(actor=request.user, run=_run(request, args), stage=LifecycleStage.ACTIVE)
    return {}


@mlflow_view("POST")
def run_log_metric(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-metric."""
    metric = {k: args.get(k) for k in ("key", "value", "timestamp", "step", "model_id")}
    tracking.run_log_batch(actor=request.user, run=_run(request, args), metrics=[metric])
    return {}


@mlflow_view("POST")
def run_log_param(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-parameter."""
    tracking.run_log_batch(actor=request.user, run=_run(request, args),
                           params=[{"key": args.str("key", required=True), "value": args.get("value")}])
    return {}


@mlflow_view("POST")
def run_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/set-tag."""
    tracking.run_log_batch(actor=request.user, run=_run(request, args),
                           tags=[{"key": args.str("key", required=True), "value": args.get("value")}])
    return {}


@mlflow_view("POST")
def run_delete_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/delete-tag."""
    tracking.run_tag_delete(actor=request.user, run=_run(request, args), key=args.str("key", required=True))
    return {}


@mlflow_view("POST")
def run_log_batch(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-batch."""
    tracking.run_log_batch(actor=request.user, run=_run(request, args), metrics=args.list("metrics"),
                           params=args.list("params"), tags=args.list("tags"))
    return {}


@mlflow_view("POST")
def run_log_inputs(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-inputs (datasets; model inputs are accepted and not stored)."""
    tracking.run_log_inputs(actor=request.user, run=_run(request, args), datasets=args.list("datasets"))
    return {}


@mlflow_view("POST")
def run_log_outputs(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/outputs: check that the named logged models exist (they already point at their run)."""
    _run(request, args)
    for item in args.list("models"):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        tracking.logged_model_get(actor=request.user, model_id=str(model_id))
    return {}


@mlflow_view("GET")
def metric_history(request: Request, args: Args) -> dict[str, Any]:
    """GET metrics/get-history."""
    run = _run(request, args)
    points = tracking.metric_history(run=run, key=args.str("metric_key", required=True))
    rows, token = _paged(points, args, default=25_000, high=25_000)
    out: dict[str, Any] = {"metrics": [shapes.metric(m) for m in rows]}
    if token:
        out["next_page_token"] = token
    return out


# ----------------------------------------------------------------------------------------- logged models


@mlflow_view("POST")
def logged_model_create(request: Request, args: Args) -> dict[str, Any]:
    """POST logged-models."""
    exp = tracking.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    run_id = args.str("source_run_id")
    run = tracking.run_get(actor=request.user, run_id=run_id) if run_id else None
    lm = tracking.logged_model_create(actor=request.user, experiment=exp, name=args.str("name"), source_run=run,
                                      model_type=args.str("model_type"), tags=args.tags(),
                                      params=args.tags("params"))
    return {"model": shapes.logged_model(lm)}


@mlflow_view("GET", "PATCH", "DELETE")
def logged_model_detail(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """GET a logged model, PATCH to finalize its status, DELETE (refused: versions may point at its files)."""
    lm = tracking.logged_model_get(actor=request.user, model_id=model_id)
    if request.method == "PATCH":
        status = args.str("status", required=True)
        lm = tracking.logged_model_finalize(actor=request.user, logged_model=lm,
                                            status=LoggedModelStatus.READY if status in ("2", "LOGGED_MODEL_READY")
                                            else status)
    elif request.method == "DELETE":
        raise InvalidInput("Logged models are kept: registered versions may point at their files.")
    return {"model": shapes.logged_model(lm)}


@mlflow_view("PATCH")
def logged_model_set_tags(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """PATCH logged-models/<id>/tags."""
    lm = tracking.logged_model_get(actor=request.user, model_id=model_id)
    tracking.logged_model_update(actor=request.user, logged_model=lm, set_tags=args.tags())
    return {}


@mlflow_view("DELETE")
def logged_model_delete_tag(request: Request, args: Args, model_id: str, key: str) -> dict[str, Any]:
    """DELETE logged-models/<id>/tags/<key>."""
    lm = tracking.logged_model_get(actor=request.user, model_id=model_id)
    tracking.logged_model_update(actor=request.user, logged_model=lm, delete_tag=key)
    return {}


@mlflow_view("POST")
def logged_model_log_params(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """POST logged-models/<id>/params."""
    lm = tracking.logged_model_get(actor=request.user, model_id=model_id)
    tracking.logged_model_update(actor=request.user, logged_model=lm, params=args.tags("params"))
    return {}


@mlflow_view("POST")
def logged_model_search(request: Request, args: Args) -> dict[str, Any]:
    """POST logged-models/search (experiment_ids, filter on name/source_run_id/status/model_type)."""
    qs = tracking.logged_model_search(actor=request.user, experiment_ids=args.list("experiment_ids"),
                                      filter_string=args.str("filter") or None)
    rows, token = _paged(qs, args, default=100, high=1000)
    out: dict[str, Any] = {"models": [shapes.logged_model(lm) for lm in rows]}
    if token:
        out["next_page_token"] = token
    return out


# ------------------------------------------------------------------------------------------------ misc


class ServerInfoApi(MlflowApi):
    """GET /api/3.0/mlflow/server-info: what this server supports (no multipart, no workspaces)."""

    def get(self, request: Request) -> Response:
        return Response({"store_type": "SqlStore", "workspaces_enabled": False,
                         "multipart_uploads_enabled": False, "multipart_downloads_enabled": False})


# ----------------------------------------------------------------------------------------------- artifacts


class ArtifactListApi(MlflowApi):
    """GET /api/2.0/mlflow-artifacts/artifacts?path=<dir>: the immediate children of a directory."""

    def get(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        try:
            root = tracking.artifact_root_resolve(actor=request.user, path=path)
        except NotFound:
            return Response({})
        files = tracking.artifact_list(root)
        return Response({"files": files} if files else {})


class ArtifactFileApi(MlflowApi):
    """GET downloads (streamed), PUT uploads (streamed into the content-addressed store) one artifact file."""

    parser_classes: list[Any] = []

    def get(self, request: Request, path: str) -> HttpResponse:
        root = tracking.artifact_root_resolve(actor=request.user, path=path)
        row = tracking.artifact_file(root)
        response = StreamingHttpResponse(iter_range(blob_open(row.blob), 0, row.size),
                                         content_type=content_type_for(row.format))
        response["Content-Length"] = str(row.size)
        response["Content-Disposition"] = f"attachment; filename=\"{path.rsplit('/', 1)[-1]}\""
        response["ETag"] = f'"{row.blob_id}"'
        return response

    def put(self, request: Request, path: str) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise InvalidInput("Invalid Content-Length.")
        if length > settings.MAX_UPLOAD_BYTES:
            raise UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")
        root = tracking.artifact_root_resolve(actor=request.user, path=path)
        if root.version is not None:
            raise InvalidInput("A registered version's files are read-only here; upload through the native API.")
        upload = spool_stream(request._request)
        tracking.artifact_put(actor=request.user, root=root, upload=upload)
        return Response({})



class EndpointNotFoundApi(MlflowApi):
    """Any other path under the MLflow prefixes: 401 to anonymous callers, JSON ENDPOINT_NOT_FOUND otherwise."""

    def _missing(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(errors.error_body("ENDPOINT_NOT_FOUND", f"No API endpoint at {request.method} {request.path}."),
                        status=404)

    get = post = put = patch = delete = _missing
