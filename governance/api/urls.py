"""Governance API routes under /api/v1/ (included before the registry's, so model-scoped routes resolve)."""

from django.urls import path

from . import views as v

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
    path("models/<str:name>/history", v.ModelHistoryApi.as_view(), name="api-model-history"),
    path("models/<str:name>/rollback", v.ModelRollbackApi.as_view(), name="api-model-rollback"),
    path("audit", v.AuditListApi.as_view(), name="api-audit"),
    path("audit/verify", v.AuditVerifyApi.as_view(), name="api-audit-verify"),
]
