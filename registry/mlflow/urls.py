"""MLflow-compatible routes: /api/2.0/mlflow/..., /api/2.0/mlflow-artifacts/... and /api/3.0/mlflow/server-info."""

from django.urls import path, re_path

from registry.mlflow import views as v

mlflow_patterns = [
    path("registered-models/create", v.registered_model_create),
    path("registered-models/get", v.registered_model_get),
    path("registered-models/search", v.registered_model_search),
    path("registered-models/update", v.registered_model_update),
    path("registered-models/rename", v.registered_model_rename),
    path("registered-models/delete", v.registered_model_delete),
    path("registered-models/set-tag", v.registered_model_set_tag),
    path("registered-models/delete-tag", v.registered_model_delete_tag),
    path("registered-models/alias", v.registered_model_alias),
    path("registered-models/get-latest-versions", v.registered_model_latest_versions),
    path("model-versions/create", v.model_version_create),
    path("model-versions/get", v.model_version_get),
    path("model-versions/search", v.model_version_search),
    path("model-versions/update", v.model_version_update),
    path("model-versions/transition-stage", v.model_version_transition),
    path("model-versions/delete", v.model_version_delete),
    path("model-versions/set-tag", v.model_version_set_tag),
    path("model-versions/delete-tag", v.model_version_delete_tag),
    path("model-versions/get-download-uri", v.model_version_download_uri),
    path("experiments/get-by-name", v.experiment_get_by_name),
    path("experiments/create", v.experiment_create),
    path("experiments/get", v.experiment_get),
    path("experiments/search", v.experiment_search),
    path("experiments/update", v.experiment_update),
    path("experiments/delete", v.experiment_delete),
    path("experiments/restore", v.experiment_restore),
    path("experiments/set-experiment-tag", v.experiment_set_tag),
    path("runs/create", v.run_create),
    path("runs/get", v.run_get),
    path("runs/update", v.run_update),
    path("runs/delete", v.run_delete),
    path("runs/restore", v.run_restore),
    path("runs/log-metric", v.run_log_metric),
    path("runs/log-parameter", v.run_log_param),
    path("runs/set-tag", v.run_set_tag),
    path("runs/delete-tag", v.run_delete_tag),
    path("runs/log-batch", v.run_log_batch),
    path("runs/log-inputs", v.run_log_inputs),
    path("runs/outputs", v.run_log_outputs),
    path("metrics/get-history", v.metric_history),
    path("logged-models", v.logged_model_create),
    path("logged-models/search", v.logged_model_search),
    path("logged-models/<str:model_id>", v.logged_model_detail),
    path("logged-models/<str:model_id>/tags", v.logged_model_set_tags),
    path("logged-models/<str:model_id>/tags/<path:key>", v.logged_model_delete_tag),
    path("logged-models/<str:model_id>/params", v.logged_model_log_params),
    re_path(r"^.*$", v.EndpointNotFoundApi.as_view()),
]

artifact_patterns = [
    path("artifacts", v.ArtifactListApi.as_view()),
    path("artifacts/<path:path>", v.ArtifactFileApi.as_view()),
    re_path(r"^.*$", v.EndpointNotFoundApi.as_view()),
]

v3_patterns = [
    path("server-info", v.ServerInfoApi.as_view()),
    re_path(r"^.*$", v.EndpointNotFoundApi.as_view()),
]
