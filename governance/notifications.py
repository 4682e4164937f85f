"""Review notifications: who is told what (by email) when a request, card or policy change awaits them or has been
decided."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from governance import evidence, selectors
from governance.models import ModelCard, PromotionPolicyVersion, PromotionRequest
from governance.policy import people

# Domain events that someone should hear about, and whom they concern.
TO_REVIEWERS = {"promotion.requested", "promotion.evidence_changed", "model_card.submitted",
                "promotion_policy.proposed"}
TO_REQUESTER = {"promotion.executed", "promotion.rejected", "promotion.blocked", "promotion.expired",
                "promotion.cancelled", "model_card.approved", "model_card.returned", "promotion_policy.approved",
                "promotion_policy.rejected"}
NOTIFIED_ACTIONS = TO_REVIEWERS | TO_REQUESTER
SENT_MARK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Notice:
    """One email to send: recipients, subject and body."""

    to: list[str]
    subject: str
    body: str


def _absolute(path: str) -> str:
    return f"{settings.STRATUM_BASE_URL}{path}"


def _addresses(people: list[Any], actor_id: int | None) -> list[str]:
    return sorted({p.email for p in people if p.email and p.is_active and p.pk != actor_id})


def _promotion_notice(action: str, request: PromotionRequest, actor_name: str, actor_id: int | None
                      ) -> Notice | None:
    what = f"{request.model.name} version {request.version.number} → {request.target_label}"
    link = _absolute(reverse("governance:promotion-detail", args=[request.pk]))
    if action == "promotion.requested":
        people = selectors.promotion_reviewers(version=request.version, requester=request.requested_by)
        to = _addresses(people, actor_id)
        subject = f"[Stratum] Review requested: {what} (#{request.pk})"
        body = (f"{actor_name} asks to promote {what}. It needs {request.approvals_required} approval(s).\n\n"
                f"Justification:\n{request.justification}\n\nReview it: {link}\n")
        return Notice(to, subject, body) if to else None
    if action == "promotion.evidence_changed":
        return _stale_notice(request, what, link, actor_id)
    requester = request.requested_by
    if requester is None:
        return None
    to = _addresses([requester], actor_id)
    outcome = {"promotion.executed": f"was approved and executed: version {request.version.number} now holds "
                                     f"{request.target_label}",
               "promotion.rejected": f"was rejected by {actor_name}",
               "promotion.blocked": "was approved, but a required gate blocks the move until it passes",
               "promotion.expired": "expired without a decision",
               "promotion.cancelled": f"was cancelled by {actor_name}"}[action]
    subject = f"[Stratum] Promotion #{request.pk} {action.split('.')[1]}: {what}"
    return Notice(to, subject, f"Your request to promote {what} {outcome}.\n\nSee it: {link}\n") if to else None


def _stale_notice(request: PromotionRequest, what: str, link: str, actor_id: int | None) -> Notice | None:
    """Tell the reviewers (and the requester) that approvals went stale and the request is back in review."""
    stale, why = evidence.staleness(request)
    if not stale:
        return None  # re-approved on the current evidence meanwhile: nothing left to ask for
    people = [*selectors.promotion_reviewers(version=request.version, requester=request.requested_by),
              *([request.requested_by] if request.requested_by else [])]
    to = _addresses(people, actor_id)
    live = evidence.live_approvals(request).count()
    reasons = "\n".join(f"- {reason}" for reason in why)
    body = (f"The evidence behind the approvals of promotion #{request.pk} ({what}) changed before it executed:\n"
            f"{reasons}\n\nThose approvals are kept but marked stale, and the request is back in review: it "
            f"needs {request.approvals_required} approval(s) on the current evidence (it has {live}).\n\n"
            f"Review it again: {link}\n")
    return Notice(to, f"[Stratum] Back to review, evidence changed: {what} (#{request.pk})", body) if to else None


def _card_notice(action: str, card: ModelCard, actor_name: str, actor_id: int | None, note: str) -> Notice | None:
    what = f"the model card of {card.model.name} version {card.version.number}"
    link = _absolute(reverse("governance:card", args=[card.model.name, card.version.number]))
    if action == "model_card.submitted":
        to = _addresses(selectors.card_reviewers(card=card), actor_id)
        subject = f"[Stratum] Card review requested: {card.model.name} v{card.version.number}"
        body = (f"{actor_name} sent {what} for review ({card.completeness}% complete, revision {card.revision}).\n\n"
                f"Review it: {link}\n")
        return Notice(to, subject, body) if to else None
    if card.submitted_by is None:
        return None
    to = _addresses([card.submitted_by], actor_id)
    verdict = "approved" if action == "model_card.approved" else "returned to draft"
    body = f"{actor_name} {verdict} {what}.\n" + (f"\nComment:\n{note}\n" if note else "") + f"\nSee it: {link}\n"
    return Notice(to, f"[Stratum] Model card {verdict}: {card.model.name} v{card.version.number}", body) \
        if to else None


def _policy_notice(action: str, version: PromotionPolicyVersion, actor_name: str, actor_id: int | None,
                   note: str) -> Notice | None:
    """A proposed policy change goes to the model's maintainers (one of whom must approve it) and its compliance
    members (who answer for what the policy enforces); the decision goes back to its author."""
    what = (f"{'removal of ' if version.document is None else ''}version {version.number} of the promotion policy "
            f"of {version.model.name} ({version.scope_label})")
    link = _absolute(reverse("governance:policy", args=[version.model.name, version.scope]))
    if action == "promotion_policy.proposed":
        people_told = [*people.maintainers(version.model), *people.compliance_viewers(version.model)]
        to = _addresses(people_told, actor_id)
        body = (f"{actor_name} proposes {what}. It takes effect once a maintainer other than its author approves "
                f"it.\n" + (f"\nNote:\n{version.note}\n" if version.note else "") + f"\nReview the change: {link}\n")
        return Notice(to, f"[Stratum] Policy change to review: {version.model.name} {version.scope_label} "
                          f"v{version.number}", body) if to else None
    if version.author is None:
        return None
    to = _addresses([version.author], actor_id)
    verdict = "approved: it is in force now" if action == "promotion_policy.approved" else "rejected"
    body = f"{actor_name} {verdict} — {what}.\n" + (f"\nComment:\n{note}\n" if note else "") + f"\nSee it: {link}\n"
    subject = f"[Stratum] Policy {action.split('.')[1]}: {version.model.name} {version.scope_label} v{version.number}"
    return Notice(to, subject, body) if to else None


def notice_for(*, action: str, target_id: int, actor_id: int | None, actor_name: str, note: str = ""
               ) -> Notice | None:
    """Return the email a committed event calls for (None when it concerns nobody with an address)."""
    if action.startswith("promotion_policy."):
        version = (PromotionPolicyVersion.objects.select_related("model", "author").filter(pk=target_id).first())
        return _policy_notice(action, version, actor_name, actor_id, note) if version else None
    if action.startswith("promotion."):
        request = (PromotionRequest.objects.select_related("model", "version", "requested_by")
                   .filter(pk=target_id).first())
        return _promotion_notice(action, request, actor_name, actor_id) if request else None
    card = ModelCard.objects.select_related("model", "version", "submitted_by").filter(pk=target_id).first()
    return _card_notice(action, card, actor_name, actor_id, note) if card else None


def notification_send(*, action: str, target_id: int, actor_id: int | None, actor_name: str, mark: str,
                      note: str = "") -> int:
    """Email whoever the event concerns, once per `mark` (each event gets its own when queued, so a redelivered or
    retried task sends nothing twice); return how many messages went out."""
    if action not in NOTIFIED_ACTIONS:
        return 0
    notice = notice_for(action=action, target_id=target_id, actor_id=actor_id, actor_name=actor_name, note=note)
    if notice is None:
        return 0
    key = f"notified:{mark}"
    if not cache.add(key, 1, timeout=SENT_MARK_SECONDS):
        return 0
    try:
        messages = [mail.EmailMessage(notice.subject, notice.body, settings.DEFAULT_FROM_EMAIL, [address])
                    for address in notice.to]  # one message each: reviewers do not see each other's addresses
        with mail.get_connection() as connection:
            return connection.send_messages(messages) or 0
    except Exception:
        cache.delete(key)  # not sent: a retry may try again
        raise
