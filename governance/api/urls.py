"""Governance API routes under /api/v1/ (included before the registry's, so model-scoped routes resolve)."""

from django.urls import path

from governance.api import bom, cards, erasure, techdoc
from governance.api import views as v

urlpatterns = [
    path("promotions", v.PromotionListCreateApi.as_view(), name="api-promotions"),
    path("promotions/<int:pk>", v.PromotionDetailApi.as_view(), name="api-promotion"),
    path("promotions/<int:pk>/approve", v.PromotionApproveApi.as_view(), name="api-promotion-approve"),
    path("promotions/<int:pk>/reject", v.PromotionRejectApi.as_view(), name="api-promotion-reject"),
    path("promotions/<int:pk>/cancel", v.PromotionCancelApi.as_view(), name="api-promotion-cancel"),
    path("promotions/<int:pk>/execute", v.PromotionExecuteApi.as_view(), name="api-promotion-execute"),
    path("models/<str:name>/protected-targets", v.ProtectedTargetListApi.as_view(), name="api-protected-targets"),
    path("models/<str:name>/protected-targets/<str:kind>/<str:target>", v.ProtectedTargetDetailApi.as_view(),
         name="api-protected-target"),
    path("models/<str:name>/review-policy", v.ReviewPolicyApi.as_view(), name="api-review-policy"),
    path("models/<str:name>/history", v.ModelHistoryApi.as_view(), name="api-model-history"),
    path("models/<str:name>/rollback", v.ModelRollbackApi.as_view(), name="api-model-rollback"),
    path("models/<str:name>/versions/<str:ref>/bom", bom.VersionBomApi.as_view(), name="api-version-bom"),
    path("models/<str:name>/versions/<str:ref>/card", cards.CardApi.as_view(), name="api-card"),
    path("models/<str:name>/versions/<str:ref>/technical-documentation", techdoc.TechnicalDocumentationApi.as_view(),
         name="api-technical-documentation"),
    path("models/<str:name>/versions/<str:ref>/card/history", cards.CardHistoryApi.as_view(), name="api-card-history"),
    path("models/<str:name>/versions/<str:ref>/card/<str:action>", cards.CardTransitionApi.as_view(),
         name="api-card-transition"),
    path("lineage/nodes/<int:node_id>/subject-manifest", erasure.SubjectManifestApi.as_view(),
         name="api-subject-manifest"),
    path("erasure-requests", erasure.ErasureListCreateApi.as_view(), name="api-erasure-requests"),
    path("erasure-requests/<int:pk>", erasure.ErasureDetailApi.as_view(), name="api-erasure-request"),
    path("erasure-requests/<int:pk>/obligations/<int:obligation_id>/resolve", erasure.ObligationResolveApi.as_view(),
         name="api-erasure-obligation-resolve"),
    path("erasure-requests/<int:pk>/obligations/<int:obligation_id>/purge-files",
         erasure.ObligationPurgeFilesApi.as_view(), name="api-erasure-obligation-purge-files"),
    path("erasure-requests/<int:pk>/close", erasure.ErasureCloseApi.as_view(), name="api-erasure-close"),
    path("audit", v.AuditListApi.as_view(), name="api-audit"),
    path("audit/verify", v.AuditVerifyApi.as_view(), name="api-audit-verify"),
]
