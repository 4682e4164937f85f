"""Governance pages."""

from django.urls import path

from . import views

app_name = "governance"

urlpatterns = [
    path("reviews/", views.ReviewInboxView.as_view(), name="inbox"),
    path("promotions/<int:pk>/", views.PromotionDetailView.as_view(), name="promotion-detail"),
    path("models/<str:name>/versions/<int:number>/promote/", views.PromotionCreateView.as_view(),
         name="promotion-create"),
    path("models/<str:name>/history/", views.ModelHistoryView.as_view(), name="model-history"),
    path("models/<str:name>/protection/", views.ProtectionView.as_view(), name="protection"),
    path("audit/", views.AuditListView.as_view(), name="audit"),
]
