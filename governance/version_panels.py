"""What governance adds to a version's page through the registry's plug point (registry.panels): the Card tab (the
version's model card in brief, with its state, completeness and exports) and the History tab (what happened to the
version, from the audit trail, and its promotion requests). Each renders in a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string

from governance import permissions, selectors
from governance.cards import schema
from governance.cards import selectors as card_selectors
from governance.models import AuditEvent
from governance.views import audit_row
from registry import panels
from registry.models import ModelVersion, RegisteredModel

HISTORY_LIMIT = 100


def card_tab(*, request: HttpRequest, model: RegisteredModel, version: ModelVersion) -> str:
    """The Card tab: the card's state, completeness, what is missing, its intended use, approval and exports."""
    card = card_selectors.card_for_version(version=version)
    context: dict[str, Any] = {"model": model, "version": version, "card": card,
                               "can_create": card is None and permissions.can_edit_card(request.user, model)}
    if card is not None:
        intended = card.content.get("intended_use") or {}
        context.update(missing_labels=[schema.label_of(p) for p in card.missing],
                       intended_use=[(label, intended.get(key)) for section in schema.SECTIONS
                                     if section["key"] == "intended_use" for key, label, _ in section["fields"]])
    return render_to_string("governance/_version_card_tab.html", context, request=request)


def version_history(*, model: RegisteredModel, version: ModelVersion, limit: int = HISTORY_LIMIT) -> list[AuditEvent]:
    """The audit events about `version`, newest first: its registration, changes, stage moves, aliases set on it or
    moved away from it, another version's stage move that archived it, promotion requests, scans and signatures
    (two queries)."""
    about = Q(version_number=version.number) | Q(action="model_version_alias.set", data__from_version=version.number)
    own = list(AuditEvent.objects.filter(about, model_id=model.pk).order_by("-seq")[:limit])
    # A move with archive_existing_versions names the versions it archived in its data; a JSON list lookup is not
    # portable to SQLite, so the model's archiving moves are read (newest first, as many as the page shows) and
    # kept when they name this version.
    archiving = [e for e in AuditEvent.objects.filter(
        model_id=model.pk, action="model_version.stage_transitioned", data__archive_existing_versions=True,
    ).exclude(version_number=version.number).order_by("-seq")[:limit]
        if version.number in (e.data or {}).get("archived_versions", [])]
    return sorted(own + archiving, key=lambda e: e.seq, reverse=True)[:limit]


def history_tab(*, request: HttpRequest, model: RegisteredModel, version: ModelVersion) -> str:
    """The History tab: the version's audit events in words, and the promotion requests that concern it."""
    events = version_history(model=model, version=version)
    requests = [r for r in selectors.promotion_list(actor=request.user, model=model)
                .filter(version_id=version.pk)[:20]]
    context = {"model": model, "version": version, "rows": [audit_row(e) for e in events],
               "limit": HISTORY_LIMIT, "requests": requests}
    return render_to_string("governance/_version_history_tab.html", context, request=request)


def register() -> None:
    """Add the Card and History tabs to the version page (called from GovernanceConfig.ready)."""
    panels.register_tab("model-card", "Card", card_tab, order=40)
    panels.register_tab("history", "History", history_tab, order=60)
