"""Deployment pages."""

from django.urls import path

from deployments import views, views_predictions

app_name = "deployments"

urlpatterns = [
    path("deployments/", views.EndpointListView.as_view(), name="list"),
    path("deployments/<slug:endpoint>/", views.EndpointDashboardView.as_view(), name="dashboard"),
    path("deployments/<slug:endpoint>/deploy", views.DeploymentStartView.as_view(), name="deploy"),
    path("deployments/<slug:endpoint>/deployments/<int:pk>/<slug:action>", views.DeploymentActionView.as_view(),
         name="action"),
    path("predictions/", views_predictions.PredictionTraceView.as_view(), name="prediction-lookup"),
    path("predictions/<str:request_id>/", views_predictions.PredictionTraceView.as_view(), name="prediction-trace"),
]
