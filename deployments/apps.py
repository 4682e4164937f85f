"""Deployments app: environments, endpoints, rollouts and the serving gateway (later issues)."""

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployments app."""

    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"
