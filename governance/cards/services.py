"""Every model card write: create (pre-filled), edit a section, refresh, submit, approve, return, reopen, archive."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.cards import prefill, schema
from governance.models import CardState, ModelCard, ModelCardRevision
from registry import events, validation
from registry import permissions as registry_permissions
from registry.errors import Forbidden, InvalidInput, InvalidState
from registry.locking import model_lock
from registry.models import ModelVersion

EDITABLE = (CardState.DRAFT,)


def _lock(card: ModelCard) -> ModelCard:
    model_lock(card.model_id)  # the lock order of registry/locking.py: the model, then its card
    return (ModelCard.objects.select_for_update(no_key=True, of=("self",)).select_related("model", "version")
            .get(pk=card.pk))



def _require_editor(actor: Any, card: ModelCard) -> None:
    registry_permissions.require(registry_permissions.can_view, actor, card.model, action="see it")
    if not permissions.can_edit_card(actor, card.model):
        raise Forbidden(f"Only contributors of {card.model.name!r} may change its model cards.")


def _save(card: ModelCard, actor: Any, action: str, note: str = "", data: dict[str, Any] | None = None) -> ModelCard:
    """Validate, score, hash and store the card, write its revision and emit the audited event."""
    schema.validate(card.content)
    card.completeness, card.missing = schema.completeness(card.content)
    card.sha256 = schema.content_sha256(card.content)
    if card.pk is None:
        card.revision = 1
        card.save()
    else:
        card.revision += 1
        card.save()
    ModelCardRevision.objects.create(
        card=card, revision=card.revision, action=action, state=card.state, content=card.content, sha256=card.sha256,
        completeness=card.completeness, note=note, actor=actor if getattr(actor, "pk", None) else None,
        actor_username=actor.get_username() if actor is not None else "system")
    events.emit(f"model_card.{action}", actor=actor, target=card, data={
        "model": card.model.name, "version": card.version.number, "state": card.state, "revision": card.revision,
        "sha256": card.sha256, "completeness": card.completeness, **(data or {})})
    return card


@transaction.atomic
def card_create(*, version: ModelVersion, actor: Any) -> ModelCard:
    """Create the version's card as a draft pre-filled from the registry (or return the existing one)."""
    model_lock(version.model_id)
    existing = ModelCard.objects.filter(version=version).first()
    if existing is not None:
        return existing
    registry_permissions.require(registry_permissions.can_view, actor, version.model, action="see it")
    if not permissions.can_edit_card(actor, version.model):
        raise Forbidden(f"Only contributors of {version.model.name!r} may create its model cards.")
    content = prefill.prefill(version, actor)
    content["change_log"] = [{"date": timezone.now().date().isoformat(), "author": actor.get_username(),
                              "summary": "Card created, pre-filled from the registry."}]
    card = ModelCard(model=version.model, version=version, content=content)
    return _save(card, actor, "created", data={"prefilled": True})


def _coerce_section(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """Keep only the human-editable fields of a section (registry-derived ones are not written by people)."""
    spec = next((s for s in schema.SECTIONS if s["key"] == section), None)
    if spec is None:
        raise InvalidInput(f"Unknown card section {section!r}; use one of {', '.join(schema.SECTION_KEYS)}.")
    allowed = {key for key, _label, _kind in spec["fields"]}
    unknown = set(values) - allowed
    if unknown:
        raise InvalidInput(f"Section {section!r} has no editable field(s) {', '.join(sorted(unknown))}; "
                           f"editable: {', '.join(sorted(allowed))}.")
    return validation.json_data(values, f"Card section {section!r}")


@transaction.atomic
def card_update(*, card: ModelCard, actor: Any, section: str, values: dict[str, Any], note: str = "") -> ModelCard:
    """Write the human-editable fields of one section of a draft card; every change is a new revision."""
    card = _lock(card)
    _require_editor(actor, card)
    if card.state not in EDITABLE:
        raise InvalidState(f"The card is {card.get_state_display().lower()}; only drafts can be edited"
                           + (" (reopen it first)." if card.state == CardState.APPROVED else "."))
    values = _coerce_section(section, values)
    before = card.content.get(section, {})
    changed = sorted(k for k, v in values.items() if before.get(k) != v)
    if not changed:
        return card
    content = schema.merged(card.content, section, values)
    title = next(s["title"] for s in schema.SECTIONS if s["key"] == section)
    content.setdefault("change_log", []).append({
        "date": timezone.now().date().isoformat(), "author": actor.get_username(),
        "summary": (note or f"Edited {title}: {', '.join(changed)}.")[:2000]})
    card.content = content
    return _save(card, actor, "updated", note=note, data={"section": section, "fields": changed})


@transaction.atomic
def card_replace(*, card: ModelCard, actor: Any, content: dict[str, Any], note: str = "") -> ModelCard:
    """Replace a draft card's whole content (API PUT); registry-derived fields are refreshed after the write."""
    card = _lock(card)
    _require_editor(actor, card)
    if card.state not in EDITABLE:
        raise InvalidState(f"The card is {card.get_state_display().lower()}; only drafts can be edited.")
    schema.validate(content)
    validation.json_data(content, "Card content")
    fresh = prefill.prefill(card.version, actor, base=content)
    fresh["change_log"] = [*list(content.get("change_log") or []), {
        "date": timezone.now().date().isoformat(), "author": actor.get_username(),
        "summary": (note or "Card replaced through the API.")[:2000]}]
    card.content = fresh
    return _save(card, actor, "updated", note=note, data={"section": "*"})


@transaction.atomic
def card_refresh(*, card: ModelCard, actor: Any) -> ModelCard:
    """Refresh the registry-derived fields of a draft (metrics, datasets, artifacts, lineage, approvals)."""
    card = _lock(card)
    _require_editor(actor, card)
    if card.state not in EDITABLE:
        raise InvalidState("Only drafts are refreshed from the registry.")
    content = prefill.prefill(card.version, actor, base=card.content)
    if content == card.content:
        return card
    card.content = content
    return _save(card, actor, "prefilled")


def _transition(card: ModelCard, actor: Any, frm: tuple[str, ...], to: str, action: str, note: str = "",
                **fields: Any) -> ModelCard:
    if card.state not in frm:
        raise InvalidState(f"The card is {card.get_state_display().lower()}; it cannot be {action} now.")
    previous = card.state
    card.state = to
    for key, value in fields.items():
        setattr(card, key, value)
    return _save(card, actor, action, note=note, data={"from": previous, "to": to, "comment": note})


def submit_refusal(card: ModelCard, threshold: int | None = None) -> str | None:
    """Return why the card cannot be sent for review yet (below the model's completeness threshold), or None."""
    threshold = threshold if threshold is not None else permissions.review_policy(card.model).card_min_completeness
    if card.completeness >= threshold:
        return None
    missing = ", ".join(schema.label_of(p) for p in card.missing[:8]) + ("…" if len(card.missing) > 8 else "")
    return (f"The card is {card.completeness}% complete; {card.model.name!r} needs {threshold}% before a card "
            f"goes for review." + (f" Missing: {missing}." if missing else ""))


@transaction.atomic
def card_submit(*, card: ModelCard, actor: Any) -> ModelCard:
    """Send a draft for review (contributors), once it reaches the model's completeness threshold."""
    card = _lock(card)
    _require_editor(actor, card)
    if card.state == CardState.DRAFT:
        refusal = submit_refusal(card)
        if refusal:
            raise InvalidState(refusal)
    return _transition(card, actor, (CardState.DRAFT,), CardState.IN_REVIEW, "submitted", submitted_by=actor)


@transaction.atomic
def card_approve(*, card: ModelCard, actor: Any, comment: str = "") -> ModelCard:
    """Approve a card in review: an approver the model's policy names who did not submit it, and only while the card
    meets the model's completeness threshold."""
    card = _lock(card)
    registry_permissions.require(registry_permissions.can_view, actor, card.model, action="see it")
    refusal = permissions.card_review_refusal(actor, card)
    if refusal:
        raise Forbidden(refusal)
    if card.state == CardState.IN_REVIEW:
        refusal = submit_refusal(card)
        if refusal:  # the threshold rose (or the card changed) since it was sent: it goes back, not through
            raise InvalidState(refusal)
    return _transition(card, actor, (CardState.IN_REVIEW,), CardState.APPROVED, "approved", note=comment[:10_000],
                       approved_by=actor, approved_at=timezone.now())


@transaction.atomic
def card_return(*, card: ModelCard, actor: Any, comment: str) -> ModelCard:
    """Return a card in review to draft with a reason (reviewers)."""
    card = _lock(card)
    registry_permissions.require(registry_permissions.can_view, actor, card.model, action="see it")
    refusal = permissions.card_review_refusal(actor, card)
    if refusal:
        raise Forbidden(refusal)
    if not (comment or "").strip():
        raise InvalidInput("Say what needs to change: a comment is required.")
    return _transition(card, actor, (CardState.IN_REVIEW,), CardState.DRAFT, "returned", note=comment.strip()[:10_000])


@transaction.atomic
def card_reopen(*, card: ModelCard, actor: Any, reason: str = "") -> ModelCard:
    """Reopen an approved card as a draft so it can change (contributors); the approval is withdrawn."""
    card = _lock(card)
    _require_editor(actor, card)
    return _transition(card, actor, (CardState.APPROVED,), CardState.DRAFT, "reopened", note=reason[:10_000],
                       approved_by=None, approved_at=None)


@transaction.atomic
def card_archive(*, card: ModelCard, actor: Any, reason: str = "") -> ModelCard:
    """Archive a card: read-only from now on, still exportable (maintainers)."""
    card = _lock(card)
    registry_permissions.require(registry_permissions.can_view, actor, card.model, action="see it")
    if not permissions.can_archive_card(actor, card.model):
        raise Forbidden(f"Only maintainers of {card.model.name!r} may archive its model cards.")
    return _transition(card, actor, (CardState.DRAFT, CardState.IN_REVIEW, CardState.APPROVED), CardState.ARCHIVED,
                       "archived", note=reason[:10_000])
