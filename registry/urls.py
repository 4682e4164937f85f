"""Registry pages."""

from django.urls import path

from registry.compare import views as views_compare
from registry.lineage import views as views_lineage
from registry.pipeline import views as views_pipeline
from registry.views import pages as views
from registry.webhooks import views as views_webhooks

app_name = "registry"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="model-list"),
    path("models/new/", views.ModelCreateView.as_view(), name="model-create"),
    path("models/<str:name>/", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:name>/retrain-rules/", views.RetrainRuleCreateView.as_view(), name="retrain-rule-create"),
    path("models/<str:name>/retrain-rules/<int:pk>/delete/", views.RetrainRuleDeleteView.as_view(),
         name="retrain-rule-delete"),
    path("models/<str:name>/aliases/", views.AliasSetView.as_view(), name="alias-set"),
    path("models/<str:name>/versions/new/", views.VersionCreateView.as_view(), name="version-create"),
    path(
        "models/<str:name>/versions/<int:number>/", views.VersionDetailView.as_view(), name="version-detail"
    ),
    path(
        "models/<str:name>/versions/<int:number>/stage/",
        views.VersionStageView.as_view(),
        name="version-stage",
    ),
    path(
        "models/<str:name>/versions/<int:number>/pipeline/",
        views_pipeline.VersionPipelineView.as_view(),
        name="version-pipeline",
    ),
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
    path("tokens/", views.TokenListView.as_view(), name="token-list"),
    path("tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
]
