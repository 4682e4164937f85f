"""Native REST API routes under /api/v1/."""

from django.urls import path

from registry.api import views as v
from registry.compare import api as compare_api
from registry.lineage import api as lineage_api
from registry.pipeline import api as pipeline_api
from registry.webhooks import api as webhooks_api

V = "models/<str:name>/versions/<str:ref>"

urlpatterns = [
    path("models", v.ModelListCreateApi.as_view(), name="api-models"),
    path("models/<str:name>", v.ModelDetailApi.as_view(), name="api-model"),
    path("models/<str:name>/rename", v.ModelRenameApi.as_view(), name="api-model-rename"),
    path("models/<str:name>/deprecation", v.ModelDeprecateApi.as_view(), name="api-model-deprecation"),
    path("models/<str:name>/tags/<str:key>", v.ModelTagApi.as_view(), name="api-model-tag"),
    path("models/<str:name>/versions", v.VersionListCreateApi.as_view(), name="api-versions"),
    path("models/<str:name>/retrain-rules", pipeline_api.RetrainRuleListApi.as_view(), name="api-retrain-rules"),
    path("models/<str:name>/retrain-rules/<int:pk>", pipeline_api.RetrainRuleDetailApi.as_view(),
         name="api-retrain-rule"),
    path("models/<str:name>/retrain-requests", pipeline_api.RetrainRequestListApi.as_view(),
         name="api-retrain-requests"),
    path(V, v.VersionDetailApi.as_view(), name="api-version"),
    path(f"{V}/stage", v.VersionStageApi.as_view(), name="api-version-stage"),
    path(f"{V}/deprecation", v.VersionDeprecateApi.as_view(), name="api-version-deprecation"),
    path(f"{V}/tags/<str:key>", v.VersionTagApi.as_view(), name="api-version-tag"),
    path(f"{V}/artifacts", v.ArtifactListApi.as_view(), name="api-artifacts"),
    path(f"{V}/artifacts/<path:path>", v.ArtifactFileApi.as_view(), name="api-artifact"),
    path(f"{V}/scans", pipeline_api.VersionScanApi.as_view(), name="api-version-scans"),
    path(f"{V}/jobs", pipeline_api.VersionJobListApi.as_view(), name="api-version-jobs"),
    path(f"{V}/conversions", pipeline_api.VersionConversionApi.as_view(), name="api-version-conversions"),
    path(f"{V}/signature", pipeline_api.VersionSignatureApi.as_view(), name="api-version-signature"),
    path(f"{V}/signature/verify", pipeline_api.VersionSignatureVerifyApi.as_view(), name="api-signature-verify"),
    path(f"{V}/signature/bundle", pipeline_api.VersionSignatureBundleApi.as_view(), name="api-signature-bundle"),
    path("signing-key", pipeline_api.SigningKeyApi.as_view(), name="api-signing-key"),
    path("webhooks", webhooks_api.WebhookListApi.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>", webhooks_api.WebhookDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/deliveries", webhooks_api.WebhookDeliveryListApi.as_view(), name="api-webhook-deliveries"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/replay", webhooks_api.WebhookReplayApi.as_view(),
         name="api-webhook-replay"),
    path("webhooks/<int:pk>/test", webhooks_api.WebhookTestApi.as_view(), name="api-webhook-test"),
    path("models/<str:name>/aliases", v.AliasListApi.as_view(), name="api-aliases"),
    path("models/<str:name>/aliases/<str:alias>", v.AliasDetailApi.as_view(), name="api-alias"),
    path("models/<str:name>/roles", v.RoleListApi.as_view(), name="api-roles"),
    path("models/<str:name>/roles/<str:kind>/<str:grantee>", v.RoleDetailApi.as_view(), name="api-role"),
    path("versions", v.VersionSearchApi.as_view(), name="api-version-search"),
    path("compare", compare_api.VersionCompareApi.as_view(), name="api-compare"),
    path("lineage/nodes", lineage_api.LineageNodeCreateApi.as_view(), name="api-lineage-nodes"),
    path("lineage/nodes/<int:node_id>", lineage_api.LineageNodeApi.as_view(), name="api-lineage-node"),
    path("lineage/nodes/<int:node_id>/impact", lineage_api.LineageImpactApi.as_view(), name="api-lineage-impact"),
    path("lineage/edges", lineage_api.LineageEdgeCreateApi.as_view(), name="api-lineage-edges"),
    path(f"lineage/{V}", lineage_api.LineageVersionApi.as_view(), name="api-lineage-version"),
    path("tokens", v.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<str:prefix>", v.TokenDetailApi.as_view(), name="api-token"),
]
