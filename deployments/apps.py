"""Deployments app: environments, endpoints, rollouts and the serving gateway."""

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployments app: adds the demo endpoints to the seeded demo."""

    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deployments import demo as deployments_demo
        from registry import demo

        demo.demo_seeded.connect(deployments_demo.seed_endpoints, dispatch_uid="deployments.demo")
