"""Governance pages."""

from django.urls import path

from governance import views, views_cards, views_erasure
from governance.techdoc import views as views_techdoc

app_name = "governance"

urlpatterns = [
    path("reviews/", views.ReviewInboxView.as_view(), name="inbox"),
    path("promotions/<int:pk>/", views.PromotionDetailView.as_view(), name="promotion-detail"),
    path("models/<str:name>/versions/<int:number>/promote/", views.PromotionCreateView.as_view(),
         name="promotion-create"),
    path("models/<str:name>/history/", views.ModelHistoryView.as_view(), name="model-history"),
    path("models/<str:name>/protection/", views.ProtectionView.as_view(), name="protection"),
    path("audit/", views.AuditListView.as_view(), name="audit"),
    path("models/<str:name>/versions/<int:number>/card/", views_cards.CardView.as_view(), name="card"),
    path("models/<str:name>/versions/<int:number>/card/edit/<str:section>/", views_cards.CardEditView.as_view(),
         name="card-edit"),
    path("models/<str:name>/versions/<int:number>/card/export/<str:fmt>/", views_cards.CardExportView.as_view(),
         name="card-export"),
    path("models/<str:name>/versions/<int:number>/technical-documentation.pdf",
         views_techdoc.TechnicalDocumentationView.as_view(), name="technical-documentation"),
    path("models/<str:name>/cards.pdf", views_cards.ModelCardsPdfView.as_view(), name="model-cards-pdf"),
    path("models/<str:name>/cards/export/", views_cards.CardExportJobCreateView.as_view(), name="card-export-start"),
    path("card-exports/<int:pk>/", views_cards.CardExportJobView.as_view(), name="card-export-job"),
    path("erasure/", views_erasure.ErasureListView.as_view(), name="erasure-list"),
    path("erasure/<int:pk>/", views_erasure.ErasureDetailView.as_view(), name="erasure-detail"),
    path("lineage/nodes/<int:pk>/subject-manifest/", views_erasure.SubjectManifestView.as_view(),
         name="subject-manifest"),
    path("erasure/<int:pk>/certificate.pdf", views_erasure.ErasureCertificateView.as_view(),
         name="erasure-certificate"),
]
