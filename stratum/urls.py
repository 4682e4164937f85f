"""Top-level URL map: pages, native API, MLflow-compatible API, health checks, admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from deployments import gateway
from registry.mlflow import urls as mlflow_urls
from stratum import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), so the docs need no inline script.
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html"),
         name="api-docs"),
    # The registry's routes first: they carry the hot reads (alias resolution), and Django tries includes in order.
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/", include("deployments.api.urls")),
    path("api/2.0/mlflow/", include(mlflow_urls.mlflow_patterns)),
    path("api/2.0/mlflow-artifacts/", include(mlflow_urls.artifact_patterns)),
    path("api/3.0/mlflow/", include(mlflow_urls.v3_patterns)),
    path("serve/<slug:endpoint>/predict", gateway.predict, name="serve-predict"),
    path("", include("governance.urls")),
    path("", include("deployments.urls")),
    path("", include("registry.urls")),
]

handler400 = "stratum.errors.bad_request"
handler403 = "stratum.errors.permission_denied"
handler404 = "stratum.errors.page_not_found"
handler500 = "stratum.errors.server_error"
