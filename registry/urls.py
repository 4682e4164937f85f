"""Registry pages."""

from django.urls import path

from registry.compare import views as views_compare
from registry.lineage import views as views_lineage
from registry.pipeline import views as views_pipeline
from registry.tracking import views as views_tracking
from registry.views import models as views_models
from registry.views import releases as views_releases
from registry.views import tokens as views_tokens
from registry.views import versions as views_versions
from registry.webhooks import views as views_webhooks

app_name = "registry"

urlpatterns = [
    path("", views_models.ModelListView.as_view(), name="model-list"),
    path("models/new/", views_models.ModelCreateView.as_view(), name="model-create"),
    path("models/<str:name>/", views_models.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:name>/retrain-rules/", views_models.RetrainRuleCreateView.as_view(), name="retrain-rule-create"),
    path("models/<str:name>/retrain-rules/<int:pk>/delete/", views_models.RetrainRuleDeleteView.as_view(),
         name="retrain-rule-delete"),
    path("models/<str:name>/aliases/", views_models.AliasSetView.as_view(), name="alias-set"),
    path("models/<str:name>/versions/new/", views_versions.VersionCreateView.as_view(), name="version-create"),
    path(
        "models/<str:name>/versions/<int:number>/", views_versions.VersionDetailView.as_view(), name="version-detail"
    ),
    path(
        "models/<str:name>/versions/<int:number>/stage/",
        views_versions.VersionStageView.as_view(),
        name="version-stage",
    ),
    path(
        "models/<str:name>/versions/<int:number>/pipeline/",
        views_pipeline.VersionPipelineView.as_view(),
        name="version-pipeline",
    ),
    path("scanner/", views_pipeline.ScannerView.as_view(), name="scanner"),
    path("models/<str:name>/versions/<int:number>/releases/", views_releases.ReleaseRequestView.as_view(),
         name="release-request"),
    path("models/<str:name>/releases/<int:pk>/approve/", views_releases.ReleaseApproveView.as_view(),
         name="release-approve"),
    path("models/<str:name>/releases/<int:pk>/revoke/", views_releases.ReleaseRevokeView.as_view(),
         name="release-revoke"),
    path("webhooks/", views_webhooks.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", views_webhooks.WebhookDetailView.as_view(), name="webhook-detail"),
    path("compare/", views_compare.VersionCompareView.as_view(), name="compare"),
    path("models/<str:name>/trends/", views_compare.ModelTrendsView.as_view(), name="model-trends"),
    path("lineage/nodes/<int:pk>/", views_lineage.LineageNodeView.as_view(), name="lineage-node"),
    path(
        "models/<str:name>/versions/<int:number>/lineage/",
        views_lineage.VersionLineageView.as_view(),
        name="version-lineage",
    ),
    path("experiments/", views_tracking.ExperimentListView.as_view(), name="experiment-list"),
    path("experiments/<int:experiment_id>/", views_tracking.ExperimentDetailView.as_view(), name="experiment-detail"),
    path("runs/<str:run_id>/", views_tracking.RunDetailView.as_view(), name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", views_tracking.RunArtifactView.as_view(), name="run-artifact"),
    path("compare/runs/", views_tracking.RunCompareView.as_view(), name="run-compare"),
    path("tokens/", views_tokens.TokenListView.as_view(), name="token-list"),
    path("tokens/<int:pk>/revoke/", views_tokens.TokenRevokeView.as_view(), name="token-revoke"),
    # Last: a version page's other tabs (Artifacts, and those governance and deployments provide through
    # registry.panels); the routes above with the same shape (stage, pipeline, lineage, releases) match first.
    path("models/<str:name>/versions/<int:number>/<slug:tab>/", views_versions.VersionTabView.as_view(),
         name="version-tab"),
]
