"""Registry pages."""

from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="model-list"),
    path("models/new/", views.ModelCreateView.as_view(), name="model-create"),
    path("models/<str:name>/", views.ModelDetailView.as_view(), name="model-detail"),
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
    path("tokens/", views.TokenListView.as_view(), name="token-list"),
    path("tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="token-revoke"),
]
