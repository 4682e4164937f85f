"""Registry app configuration."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The registry core app."""

    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers OpenAPI auth extensions
