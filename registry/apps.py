"""Registry app configuration."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The registry core app."""

    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from registry import caching, events  # noqa: F401 - caching connects the receivers that retire cached reads
        from registry.api import schema  # noqa: F401 - registers OpenAPI auth extensions
        from registry.lineage import services as lineage

        events.domain_event.connect(lineage.on_domain_event, dispatch_uid="registry.lineage.services.fill")
        from registry.pipeline import handlers, jobs  # noqa: F401 - handlers installs every job kind's handler
        from registry.webhooks import services as webhooks

        events.domain_event_committed.connect(jobs.on_domain_event_committed, dispatch_uid="registry.pipeline.jobs")
        events.domain_event_committed.connect(webhooks.on_domain_event_committed,
                                              dispatch_uid="registry.webhooks.services")
        from registry.pipeline import triggers

        events.domain_event_committed.connect(triggers.on_domain_event_committed,
                                              dispatch_uid="registry.pipeline.triggers")
        self._forget_tokens_on_change()
        from axes.signals import user_locked_out

        from registry import lockouts

        user_locked_out.connect(lockouts.on_user_locked_out, dispatch_uid="registry.lockouts.audit")

    @staticmethod
    def _forget_tokens_on_change() -> None:
        """A saved user or token (deactivated, revoked, re-scoped) must not be trusted from the token cache."""
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from registry.authentication import forget_checked_tokens
        from registry.models import AccessToken

        def forget(**_: object) -> None:
            forget_checked_tokens()

        for model in (get_user_model(), AccessToken):
            post_save.connect(forget, sender=model, weak=False, dispatch_uid=f"registry.tokens.{model.__name__}.save")
            post_delete.connect(forget, sender=model, weak=False,
                                dispatch_uid=f"registry.tokens.{model.__name__}.delete")
