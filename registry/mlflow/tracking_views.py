"""MLflow-compatible tracking routes: experiments, runs (params, metrics, tags, inputs), logged models, and the
mlflow-artifacts file routes. Each reads the request the way the stock client sends it, calls one tracking service
and answers in MLflow's JSON shape."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from registry.artifacts.formats import content_type_for
from registry.artifacts.storage import blob_open, direct_download_url, iter_range, spool_stream
from registry.errors import Forbidden, InvalidInput, NotFound, UploadTooLarge
from registry.mlflow import shapes
from registry.mlflow.common import Args, MlflowApi, invalid, missing, mlflow_view, paged
from registry.models import LifecycleStage, LoggedModelStatus
from registry.tracking import artifacts as tracking_artifacts
from registry.tracking import experiments, logged_models, run_search, runs

MAX_EXPERIMENT_RESULTS = 50_000


@mlflow_view("GET")
def experiment_get_by_name(request: Request, args: Args) -> dict[str, Any]:
    """GET experiments/get-by-name."""
    exp = experiments.experiment_get_by_name(actor=request.user, name=args.str("experiment_name", required=True))
    return {"experiment": shapes.experiment(exp)}


@mlflow_view("POST")
def experiment_create(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/create."""
    exp = experiments.experiment_create(actor=request.user, name=args.str("name", required=True),
                                     artifact_location=args.str("artifact_location"), tags=args.tags())
    return {"experiment_id": str(exp.pk)}


@mlflow_view("GET")
def experiment_get(request: Request, args: Args) -> dict[str, Any]:
    """GET experiments/get."""
    exp = experiments.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    return {"experiment": shapes.experiment(exp)}


@mlflow_view("POST", "GET")
def experiment_search(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/search."""
    qs = experiments.experiment_search(actor=request.user, filter_string=args.str("filter") or None,
                                    view_type=args.str("view_type", default="ACTIVE_ONLY"))
    rows, token = paged(qs, args, default=1000, high=MAX_EXPERIMENT_RESULTS)
    out: dict[str, Any] = {"experiments": [shapes.experiment(e) for e in rows]} if rows else {}
    if token:
        out["next_page_token"] = token
    return out


def _owned_experiment(request: Request, args: Args) -> Any:
    exp = experiments.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    if exp.owner_id != request.user.pk and not request.user.is_staff:
        raise Forbidden("Only the experiment's owner may change it.")
    return exp


@mlflow_view("POST")
def experiment_update(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/update (rename)."""
    experiments.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               new_name=args.str("new_name", required=True))
    return {}


@mlflow_view("POST")
def experiment_delete(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/delete (soft)."""
    experiments.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               lifecycle_stage=LifecycleStage.DELETED)
    return {}


@mlflow_view("POST")
def experiment_restore(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/restore."""
    experiments.experiment_update(actor=request.user, experiment=_owned_experiment(request, args),
                               lifecycle_stage=LifecycleStage.ACTIVE)
    return {}


@mlflow_view("POST")
def experiment_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST experiments/set-experiment-tag."""
    experiments.experiment_tag_set(actor=request.user, experiment=_owned_experiment(request, args),
                                key=args.str("key", required=True), value=args.str("value"))
    return {}


# ------------------------------------------------------------------------------------------------- runs


def _run(request: Request, args: Args) -> Any:
    return runs.run_get(actor=request.user, run_id=args.str("run_id") or args.str("run_uuid", required=True))


@mlflow_view("POST")
def run_create(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/create."""
    exp = experiments.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", default="0"))
    run = runs.run_create(actor=request.user, experiment=exp, start_time=args.get("start_time"),
                              run_name=args.str("run_name"), tags=args.tags())
    body = shapes.run(run)
    if not body["outputs"]:
        del body["outputs"]  # MLflow's runs/create answer has no outputs yet; runs/get shows them empty
    return {"run": body}


@mlflow_view("GET")
def run_get(request: Request, args: Args) -> dict[str, Any]:
    """GET runs/get."""
    return {"run": shapes.run(_run(request, args))}


@mlflow_view("POST", "GET")
def run_search_view(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/search (mlflow.search_runs)."""
    if args.get("max_results") not in (None, "") and str(args.get("max_results")).strip() in ("0", "-0"):
        raise InvalidInput("Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer")
    order_by = args.list("order_by")
    if not all(isinstance(clause, str) for clause in order_by):
        raise InvalidInput(invalid("order_by", order_by))
    qs = run_search.run_search(actor=request.user, experiment_ids=args.list("experiment_ids"),
                               filter_string=args.str("filter") or None,
                               run_view_type=args.str("run_view_type", default="ACTIVE_ONLY"), order_by=order_by)
    rows, token = paged(qs, args, default=run_search.DEFAULT_RUN_RESULTS, high=run_search.MAX_RUN_RESULTS)
    out: dict[str, Any] = {"runs": shapes.runs(rows)} if rows else {}
    if token:
        out["next_page_token"] = token
    return out


@mlflow_view("POST")
def run_update(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/update (status, end time, name)."""
    run = runs.run_update(actor=request.user, run=_run(request, args), status=args.str("status") or None,
                              end_time=args.get("end_time"), run_name=args.str("run_name") or None)
    return {"run_info": shapes.run_info(run)}


@mlflow_view("POST")
def run_delete(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/delete (soft)."""
    runs.run_set_lifecycle(actor=request.user, run=_run(request, args), stage=LifecycleStage.DELETED)
    return {}


@mlflow_view("POST")
def run_restore(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/restore."""
    runs.run_set_lifecycle(actor=request.user, run=_run(request, args), stage=LifecycleStage.ACTIVE)
    return {}


@mlflow_view("POST")
def run_log_metric(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-metric."""
    for required in ("key", "value", "timestamp"):
        if args.get(required) in (None, ""):
            raise InvalidInput(missing(required))
    metric = {k: args.get(k) for k in ("key", "value", "timestamp", "step", "model_id")}
    runs.run_log_batch(actor=request.user, run=_run(request, args), metrics=[metric])
    return {}


@mlflow_view("POST")
def run_log_param(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-parameter."""
    runs.run_log_batch(actor=request.user, run=_run(request, args),
                           params=[{"key": args.str("key", required=True), "value": args.get("value")}])
    return {}


@mlflow_view("POST")
def run_set_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/set-tag."""
    runs.run_log_batch(actor=request.user, run=_run(request, args),
                           tags=[{"key": args.str("key", required=True), "value": args.get("value")}])
    return {}


@mlflow_view("POST")
def run_delete_tag(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/delete-tag."""
    runs.run_tag_delete(actor=request.user, run=_run(request, args), key=args.str("key", required=True))
    return {}


@mlflow_view("POST")
def run_log_batch(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-batch."""
    run = _run(request, args)
    try:
        runs.run_log_batch(actor=request.user, run=run, metrics=args.list("metrics"), params=args.list("params"),
                           tags=args.list("tags"))
    except InvalidInput as exc:
        if not (isinstance(exc.details, dict) and "changed_params" in exc.details):
            raise
        # log-batch words it for all of them at once, as MLflow's log_batch does
        raise InvalidInput(f"Changing param values is not allowed. Params were already logged="
                           f"'{exc.details['changed_params']}' for run ID='{run.run_id}'.")
    return {}


@mlflow_view("POST")
def run_log_inputs(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/log-inputs (datasets; model inputs are accepted and not stored)."""
    runs.run_log_inputs(actor=request.user, run=_run(request, args), datasets=args.list("datasets"))
    return {}


@mlflow_view("POST")
def run_log_outputs(request: Request, args: Args) -> dict[str, Any]:
    """POST runs/outputs: check that the named logged models exist (they already point at their run)."""
    _run(request, args)
    for item in args.list("models"):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        logged_models.logged_model_get(actor=request.user, model_id=str(model_id))
    return {}


@mlflow_view("GET")
def metric_history(request: Request, args: Args) -> dict[str, Any]:
    """GET metrics/get-history."""
    run = _run(request, args)
    points = runs.metric_history(run=run, key=args.str("metric_key", required=True))
    rows, token = paged(points, args, default=25_000, high=25_000)
    out: dict[str, Any] = {"metrics": [shapes.metric(m) for m in rows]} if rows else {}
    if token:
        out["next_page_token"] = token
    return out


# ---------------------------------------------------------------------------------------- logged models


@mlflow_view("POST")
def logged_model_create(request: Request, args: Args) -> dict[str, Any]:
    """POST logged-models."""
    exp = experiments.experiment_get(actor=request.user, experiment_id=args.str("experiment_id", required=True))
    run_id = args.str("source_run_id")
    run = runs.run_get(actor=request.user, run_id=run_id) if run_id else None
    lm = logged_models.logged_model_create(actor=request.user, experiment=exp, name=args.str("name"), source_run=run,
                                      model_type=args.str("model_type"), tags=args.tags(),
                                      params=args.tags("params"))
    return {"model": shapes.logged_model(lm)}


@mlflow_view("GET", "PATCH", "DELETE")
def logged_model_detail(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """GET a logged model, PATCH to finalize its status, DELETE (refused: versions may point at its files)."""
    lm = logged_models.logged_model_get(actor=request.user, model_id=model_id)
    if request.method == "PATCH":
        status = args.str("status", required=True)
        lm = logged_models.logged_model_finalize(actor=request.user, logged_model=lm,
                                            status=LoggedModelStatus.READY if status in ("2", "LOGGED_MODEL_READY")
                                            else status)
    elif request.method == "DELETE":
        raise InvalidInput("Logged models are kept: registered versions may point at their files.")
    return {"model": shapes.logged_model(lm)}


@mlflow_view("PATCH")
def logged_model_set_tags(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """PATCH logged-models/<id>/tags."""
    lm = logged_models.logged_model_get(actor=request.user, model_id=model_id)
    logged_models.logged_model_update(actor=request.user, logged_model=lm, set_tags=args.tags())
    return {}


@mlflow_view("DELETE")
def logged_model_delete_tag(request: Request, args: Args, model_id: str, key: str) -> dict[str, Any]:
    """DELETE logged-models/<id>/tags/<key>."""
    lm = logged_models.logged_model_get(actor=request.user, model_id=model_id)
    logged_models.logged_model_update(actor=request.user, logged_model=lm, delete_tag=key)
    return {}


@mlflow_view("POST")
def logged_model_log_params(request: Request, args: Args, model_id: str) -> dict[str, Any]:
    """POST logged-models/<id>/params."""
    lm = logged_models.logged_model_get(actor=request.user, model_id=model_id)
    logged_models.logged_model_update(actor=request.user, logged_model=lm, params=args.tags("params"))
    return {}


@mlflow_view("POST")
def logged_model_search(request: Request, args: Args) -> dict[str, Any]:
    """POST logged-models/search (experiment_ids, filter on name/source_run_id/status/model_type)."""
    qs = logged_models.logged_model_search(actor=request.user, experiment_ids=args.list("experiment_ids"),
                                      filter_string=args.str("filter") or None)
    rows, token = paged(qs, args, default=100, high=1000)
    out: dict[str, Any] = {"models": [shapes.logged_model(lm) for lm in rows]}
    if token:
        out["next_page_token"] = token
    return out


# -------------------------------------------------------------------------------------------- artifacts


def _resolve(request: Request, path: str) -> Any:
    """The artifact root a path names; a path that breaks the path rules is MLflow's 400 "Invalid path"."""
    try:
        return tracking_artifacts.artifact_root_resolve(actor=request.user, path=path)
    except InvalidInput:
        raise InvalidInput("Invalid path")


class ArtifactListApi(MlflowApi):
    """GET /api/2.0/mlflow-artifacts/artifacts?path=<dir>: the immediate children of a directory."""

    def get(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        try:
            root = _resolve(request, path)
        except NotFound:
            return Response({})
        files = tracking_artifacts.artifact_list(root)
        return Response({"files": files} if files else {})


class ArtifactFileApi(MlflowApi):
    """GET downloads (streamed), PUT uploads (streamed into the content-addressed store) one artifact file."""

    parser_classes: list[Any] = []

    def get(self, request: Request, path: str) -> HttpResponse:
        root = _resolve(request, path)
        try:
            row = tracking_artifacts.artifact_file_servable(root)  # a quarantined file's bytes never leave
        except NotFound:
            raise NotFound(f"No such artifact: '{path}'")  # MLflow names the path as requested
        filename = path.rsplit("/", 1)[-1]
        direct = direct_download_url(row.blob, filename=filename, content_type=content_type_for(row.format))
        if direct is not None:  # the mlflow client (requests) follows the redirect to the object store
            return HttpResponseRedirect(direct, headers={"Cache-Control": "no-store"})
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
        root = _resolve(request, path)
        if root.version is not None:
            raise InvalidInput("A registered version's files are read-only here; upload through the native API.")
        upload = spool_stream(request)  # DRF passes read() through to the HttpRequest: the body streams
        tracking_artifacts.artifact_put(actor=request.user, root=root, upload=upload)
        return HttpResponse(status=200)  # MLflow's upload answers 200 with an empty body
