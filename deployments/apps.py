"""Deployments app: environments, endpoints, rollouts and the serving gateway."""

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployments app: environments, endpoints, rollouts and the serving gateway."""

    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deployments import version_panels
        from deployments.selectors import version_operations
        from registry import operations

        version_panels.register()
        operations.register_reporter(version_operations)
