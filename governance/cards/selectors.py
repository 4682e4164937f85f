"""Model card reads shared by the page, the API, the exports and the promotion gate."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from governance.models import ModelCard, ModelCardRevision
from registry.errors import NotFound
from registry.models import ModelVersion, RegisteredModel


def card_for_version(*, version: ModelVersion) -> ModelCard | None:
    """Return the card of an already visible version, or None."""
    return ModelCard.objects.select_related("model", "version", "approved_by", "submitted_by").filter(
        version=version).first()


def card_get(*, version: ModelVersion) -> ModelCard:
    """Return the card of an already visible version, or raise NotFound."""
    card = card_for_version(version=version)
    if card is None:
        raise NotFound(f"Version {version.number} of {version.model.name!r} has no model card yet.")
    return card


def card_history(*, card: ModelCard) -> QuerySet[ModelCardRevision]:
    """Return the card's revisions, newest first."""
    return ModelCardRevision.objects.filter(card=card).order_by("-revision")


def cards_of_model(*, model: RegisteredModel) -> QuerySet[ModelCard]:
    """Return every card of a visible model, by version number."""
    return ModelCard.objects.filter(model=model).select_related("model", "version", "approved_by").order_by(
        "version__number")


def card_gate_status(version: ModelVersion) -> tuple[str, str]:
    """Return ("missing" | "incomplete" | "complete", detail) for the promotion gate."""
    row: dict[str, Any] | None = ModelCard.objects.filter(version_id=version.pk).values(
        "state", "completeness", "missing").first()
    if row is None:
        return "missing", f"Version {version.number} has no model card yet."
    if row["state"] == "archived":
        return "incomplete", "The version's model card is archived."
    if row["missing"]:
        from governance.cards.schema import label_of

        names = ", ".join(label_of(p) for p in row["missing"][:6]) + ("…" if len(row["missing"]) > 6 else "")
        return "incomplete", f"Card {row['completeness']}% complete ({row['state']}); missing: {names}."
    return "complete", f"Card complete ({row['state'].replace('_', ' ')})."
