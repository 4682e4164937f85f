"""Registry app configuration."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The registry core app."""

    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import events, lineage
        from .api import schema  # noqa: F401 - registers OpenAPI auth extensions

        events.domain_event.connect(lineage.on_domain_event, dispatch_uid="registry.lineage.fill")
        from .pipeline import handlers, jobs

        events.domain_event_committed.connect(jobs.on_domain_event_committed, dispatch_uid="registry.pipeline.jobs")
        events.domain_event_committed.connect(handlers.webhooks.on_domain_event_committed,
                                              dispatch_uid="registry.pipeline.webhooks")
        from . import triggers

        events.domain_event_committed.connect(triggers.on_domain_event_committed, dispatch_uid="registry.triggers")
