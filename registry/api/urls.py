"""Native REST API routes under /api/v1/."""

from django.urls import path

from registry.api import access as access_api
from registry.api import artifacts as artifacts_api
from registry.api import models as models_api
from registry.api import versions as versions_api
from registry.compare import api as compare_api
from registry.lineage import api as lineage_api
from registry.pipeline import api as pipeline_api
from registry.pipeline.scan import api as release_api
from registry.webhooks import api as webhooks_api

V = "models/<str:name>/versions/<str:ref>"

urlpatterns = [
    path("models", models_api.ModelListCreateApi.as_view(), name="api-models"),
    path("models/<str:name>", models_api.ModelDetailApi.as_view(), name="api-model"),
    path("models/<str:name>/rename", models_api.ModelRenameApi.as_view(), name="api-model-rename"),
    path("models/<str:name>/deprecation", models_api.ModelDeprecateApi.as_view(), name="api-model-deprecation"),
    path("models/<str:name>/tags/<str:key>", models_api.ModelTagApi.as_view(), name="api-model-tag"),
    path("models/<str:name>/versions", versions_api.VersionListCreateApi.as_view(), name="api-versions"),
    path("models/<str:name>/retrain-rules", pipeline_api.RetrainRuleListApi.as_view(), name="api-retrain-rules"),
    path("models/<str:name>/retrain-rules/<int:pk>", pipeline_api.RetrainRuleDetailApi.as_view(),
         name="api-retrain-rule"),
    path("models/<str:name>/retrain-requests", pipeline_api.RetrainRequestListApi.as_view(),
         name="api-retrain-requests"),
    path("models/<str:name>/releases", release_api.ReleaseListApi.as_view(), name="api-releases"),
    path("models/<str:name>/releases/<int:pk>/approve", release_api.ReleaseApproveApi.as_view(),
         name="api-release-approve"),
    path("models/<str:name>/releases/<int:pk>/revoke", release_api.ReleaseRevokeApi.as_view(),
         name="api-release-revoke"),
    path(V, versions_api.VersionDetailApi.as_view(), name="api-version"),
    path(f"{V}/stage", versions_api.VersionStageApi.as_view(), name="api-version-stage"),
    path(f"{V}/deprecation", versions_api.VersionDeprecateApi.as_view(), name="api-version-deprecation"),
    path(f"{V}/tags/<str:key>", versions_api.VersionTagApi.as_view(), name="api-version-tag"),
    path(f"{V}/artifacts", artifacts_api.ArtifactListApi.as_view(), name="api-artifacts"),
    path(f"{V}/artifacts/<path:path>", artifacts_api.ArtifactFileApi.as_view(), name="api-artifact"),
    path(f"{V}/scans", pipeline_api.VersionScanApi.as_view(), name="api-version-scans"),
    path(f"{V}/jobs", pipeline_api.VersionJobListApi.as_view(), name="api-version-jobs"),
    path(f"{V}/conversions", pipeline_api.VersionConversionApi.as_view(), name="api-version-conversions"),
    path(f"{V}/signature", pipeline_api.VersionSignatureApi.as_view(), name="api-version-signature"),
    path(f"{V}/signature/verify", pipeline_api.VersionSignatureVerifyApi.as_view(), name="api-signature-verify"),
    path(f"{V}/signature/bundle", pipeline_api.VersionSignatureBundleApi.as_view(), name="api-signature-bundle"),
    path("scans/rescan", pipeline_api.ScannerRescanApi.as_view(), name="api-scanner-rescan"),
    path("signing-key", pipeline_api.SigningKeyApi.as_view(), name="api-signing-key"),
    path("webhooks", webhooks_api.WebhookListApi.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>", webhooks_api.WebhookDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/deliveries", webhooks_api.WebhookDeliveryListApi.as_view(), name="api-webhook-deliveries"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/replay", webhooks_api.WebhookReplayApi.as_view(),
         name="api-webhook-replay"),
    path("webhooks/<int:pk>/test", webhooks_api.WebhookTestApi.as_view(), name="api-webhook-test"),
    path("models/<str:name>/aliases", models_api.AliasListApi.as_view(), name="api-aliases"),
    path("models/<str:name>/aliases/<str:alias>", models_api.AliasDetailApi.as_view(), name="api-alias"),
    path("models/<str:name>/roles", access_api.RoleListApi.as_view(), name="api-roles"),
    path("models/<str:name>/roles/<str:kind>/<str:grantee>", access_api.RoleDetailApi.as_view(), name="api-role"),
    path("versions", versions_api.VersionSearchApi.as_view(), name="api-version-search"),
    path("compare", compare_api.VersionCompareApi.as_view(), name="api-compare"),
    path("lineage/nodes", lineage_api.LineageNodeCreateApi.as_view(), name="api-lineage-nodes"),
    path("lineage/nodes/<int:node_id>", lineage_api.LineageNodeApi.as_view(), name="api-lineage-node"),
    path("lineage/nodes/<int:node_id>/impact", lineage_api.LineageImpactApi.as_view(), name="api-lineage-impact"),
    path("lineage/edges", lineage_api.LineageEdgeCreateApi.as_view(), name="api-lineage-edges"),
    path(f"{V}/feature-sets", lineage_api.VersionFeatureSetsApi.as_view(), name="api-version-feature-sets"),
    path(f"{V}/prediction-batches", lineage_api.VersionPredictionBatchesApi.as_view(),
         name="api-version-prediction-batches"),
    path(f"lineage/{V}", lineage_api.LineageVersionApi.as_view(), name="api-lineage-version"),
    path(f"lineage/{V}/openlineage", lineage_api.OpenLineageVersionApi.as_view(), name="api-lineage-openlineage-out"),
    path("lineage/openlineage", lineage_api.OpenLineageIngestApi.as_view(), name="api-lineage-openlineage"),
    path("tokens", access_api.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<str:prefix>", access_api.TokenDetailApi.as_view(), name="api-token"),
]
