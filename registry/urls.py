"""Registry pages."""

from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="model-list"),
]
