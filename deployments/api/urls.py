"""Deployment REST API routes under /api/v1/."""

from django.urls import path

from deployments.api import views as v

D = "deployments/<int:pk>"

urlpatterns = [
    path("environments", v.EnvironmentListCreateApi.as_view(), name="api-environments"),
    path("environments/<str:name>", v.EnvironmentDetailApi.as_view(), name="api-environment"),
    path("endpoints", v.EndpointListCreateApi.as_view(), name="api-endpoints"),
    path("endpoints/<str:name>", v.EndpointDetailApi.as_view(), name="api-endpoint"),
    path("endpoints/<str:name>/traffic", v.EndpointTrafficApi.as_view(), name="api-endpoint-traffic"),
    path("endpoints/<str:name>/kserve", v.EndpointKServeApi.as_view(), name="api-endpoint-kserve"),
    path("endpoints/<str:name>/history", v.EndpointHistoryApi.as_view(), name="api-endpoint-history"),
    path("deployments", v.DeploymentListCreateApi.as_view(), name="api-deployments"),
    path("predictions/<str:request_id>", v.PredictionTraceApi.as_view(), name="api-prediction-trace"),
    path(D, v.DeploymentDetailApi.as_view(), name="api-deployment"),
    path(f"{D}/analysis", v.DeploymentAnalysisApi.as_view(), name="api-deployment-analysis"),
    path(f"{D}/pause", v.DeploymentPauseApi.as_view(), name="api-deployment-pause"),
    path(f"{D}/resume", v.DeploymentResumeApi.as_view(), name="api-deployment-resume"),
    path(f"{D}/promote", v.DeploymentPromoteApi.as_view(), name="api-deployment-promote"),
    path(f"{D}/promote-full", v.DeploymentPromoteFullApi.as_view(), name="api-deployment-promote-full"),
    path(f"{D}/abort", v.DeploymentAbortApi.as_view(), name="api-deployment-abort"),
    path(f"{D}/rollback", v.DeploymentRollbackApi.as_view(), name="api-deployment-rollback"),
    path(f"{D}/outcomes", v.DeploymentOutcomeApi.as_view(), name="api-deployment-outcomes"),
]
