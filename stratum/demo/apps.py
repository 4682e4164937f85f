"""The demo app: `manage.py seed_demo` and the demo story, told across the registry, governance and deployments."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Seeds the demo; the only app that knows all three others, so none of them knows about the demo."""

    name = "stratum.demo"
    label = "demo"
