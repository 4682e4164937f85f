"""Governance app: audit trail, promotion requests, model cards, erasure requests (later issues)."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Governance app."""

    name = "governance"
    default_auto_field = "django.db.models.BigAutoField"
