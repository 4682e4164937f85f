"""MLflow-compatible routes: /api/2.0/mlflow/..., /api/2.0/mlflow-artifacts/... and /api/3.0/mlflow/server-info."""

from django.urls import path, re_path

from registry.mlflow import common
from registry.mlflow import registry_views as rv
from registry.mlflow import tracking_views as tv

mlflow_patterns = [
    path("registered-models/create", rv.registered_model_create),
    path("registered-models/get", rv.registered_model_get),
    path("registered-models/search", rv.registered_model_search),
    path("registered-models/update", rv.registered_model_update),
    path("registered-models/rename", rv.registered_model_rename),
    path("registered-models/delete", rv.registered_model_delete),
    path("registered-models/set-tag", rv.registered_model_set_tag),
    path("registered-models/delete-tag", rv.registered_model_delete_tag),
    path("registered-models/alias", rv.registered_model_alias),
    path("registered-models/get-latest-versions", rv.registered_model_latest_versions),
    path("model-versions/create", rv.model_version_create),
    path("model-versions/get", rv.model_version_get),
    path("model-versions/search", rv.model_version_search),
    path("model-versions/update", rv.model_version_update),
    path("model-versions/transition-stage", rv.model_version_transition),
    path("model-versions/delete", rv.model_version_delete),
    path("model-versions/set-tag", rv.model_version_set_tag),
    path("model-versions/delete-tag", rv.model_version_delete_tag),
    path("model-versions/get-download-uri", rv.model_version_download_uri),
    path("experiments/get-by-name", tv.experiment_get_by_name),
    path("experiments/create", tv.experiment_create),
    path("experiments/get", tv.experiment_get),
    path("experiments/search", tv.experiment_search),
    path("experiments/update", tv.experiment_update),
    path("experiments/delete", tv.experiment_delete),
    path("experiments/restore", tv.experiment_restore),
    path("experiments/set-experiment-tag", tv.experiment_set_tag),
    path("runs/create", tv.run_create),
    path("runs/get", tv.run_get),
    path("runs/search", tv.run_search_view),
    path("runs/update", tv.run_update),
    path("runs/delete", tv.run_delete),
    path("runs/restore", tv.run_restore),
    path("runs/log-metric", tv.run_log_metric),
    path("runs/log-parameter", tv.run_log_param),
    path("runs/set-tag", tv.run_set_tag),
    path("runs/delete-tag", tv.run_delete_tag),
    path("runs/log-batch", tv.run_log_batch),
    path("runs/log-inputs", tv.run_log_inputs),
    path("runs/outputs", tv.run_log_outputs),
    path("metrics/get-history", tv.metric_history),
    path("logged-models", tv.logged_model_create),
    path("logged-models/search", tv.logged_model_search),
    path("logged-models/<str:model_id>", tv.logged_model_detail),
    path("logged-models/<str:model_id>/tags", tv.logged_model_set_tags),
    path("logged-models/<str:model_id>/tags/<path:key>", tv.logged_model_delete_tag),
    path("logged-models/<str:model_id>/params", tv.logged_model_log_params),
    re_path(r"^.*$", common.EndpointNotFoundApi.as_view()),
]

artifact_patterns = [
    path("artifacts", tv.ArtifactListApi.as_view()),
    path("artifacts/<path:path>", tv.ArtifactFileApi.as_view()),
    re_path(r"^.*$", common.EndpointNotFoundApi.as_view()),
]

v3_patterns = [
    path("server-info", common.ServerInfoApi.as_view()),
    re_path(r"^.*$", common.EndpointNotFoundApi.as_view()),
]
