"""Named permission predicates of governance; services enforce them, selectors filter by them."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q, QuerySet

from governance.models import CardApprovers, PromotionPolicyVersion, PromotionRequest, ReviewPolicy
from registry.errors import Forbidden
from registry.models import ModelRole, RegisteredModel, Role
from registry.permissions import can_view, has_model_role, visible_models


def can_request_promotion(user, model: RegisteredModel) -> bool:
    """Contributors and above may ask for a version to be promoted."""
    return has_model_role(user, model, Role.CONTRIBUTOR)


def can_manage_protection(user, model: RegisteredModel) -> bool:
    """Maintainers and above declare which stages and aliases are protected, and how."""
    return has_model_role(user, model, Role.MAINTAINER)


@dataclass(frozen=True)
class Answer:
    """A permission's answer that can say why not: true when allowed, else `reason` tells the person why."""

    reason: str = ""

    def __bool__(self) -> bool:
        return not self.reason


ALLOWED = Answer()


def can_approve(user, request: PromotionRequest) -> Answer:
    """Reviewers of the model may approve or reject, never the person who asked nor the version's creator.

    The promotion service enforces it, the request page shows its reason, and `selectors.promotion_inbox` filters
    by the same rule in SQL.
    """
    if request.requested_by_id == user.pk:
        return Answer("You opened this request; someone else must review it (four-eyes rule).")
    if request.version.creator_id == user.pk:
        return Answer("You created this version; someone else must review it (four-eyes rule).")
    if not has_model_role(user, request.model, Role.REVIEWER) and not (
            is_compliance(user) and can_view(user, request.model) and _policy_asks_compliance(request)):
        return Answer("Only reviewers of the model (and compliance officers, where its policy asks for them) may "
                      "approve or reject promotion requests.")
    return ALLOWED


def compliance_approvable_filter(user) -> Q:
    """The promotion requests a compliance officer may decide because the policy in force asks for one, as a filter
    on PromotionRequest (the SQL form of the compliance branch of `can_approve`)."""
    if user is None or not user.is_authenticated:
        return Q(pk__in=[])
    asks = {"state": "active", "document__roles__compliance__gte": 1}
    own = PromotionPolicyVersion.objects.filter(model_id=OuterRef("model_id"), kind=OuterRef("kind"),
                                                target=OuterRef("target"), state="active")
    default = PromotionPolicyVersion.objects.filter(model_id=OuterRef("model_id"), kind="", target="", **asks)
    member = Exists(Group.objects.filter(pk__in=user.groups.values("pk"), name=COMPLIANCE_GROUP))
    in_force_asks = Exists(own.filter(**asks)) | (~Exists(own) & Exists(default))
    return Q(member) & Q(model__in=visible_models(user)) & in_force_asks


def _policy_asks_compliance(request: PromotionRequest) -> bool:
    """True when the policy in force for the request's target needs a compliance officer's approval."""
    version = PromotionPolicyVersion.objects.in_force(request.model_id, request.kind, request.target)
    return bool(version is not None and version.document and version.document.get("roles", {}).get("compliance"))


def can_cancel(user, request: PromotionRequest) -> bool:
    """The requester and the model's maintainers may withdraw a request."""
    return request.requested_by_id == user.pk or has_model_role(user, request.model, Role.MAINTAINER)


def can_emergency_rollback(user, model: RegisteredModel, who: list[str] | tuple[str, ...] = ("maintainer",)) -> bool:
    """Whoever the target's policy names (maintainers by default; owners; compliance members who can see the model)
    may roll back at once where that policy allows emergency rollback."""
    if "maintainer" in who and has_model_role(user, model, Role.MAINTAINER):
        return True
    if "owner" in who and has_model_role(user, model, Role.OWNER):
        return True
    return "compliance" in who and is_compliance(user) and can_view(user, model)


def reviewable_models(user) -> QuerySet[RegisteredModel]:
    """Return the models on which `user` holds the reviewer role or above (staff: every model)."""
    if user is None or not user.is_authenticated or user.is_staff or user.is_superuser:
        return visible_models(user)
    # A reviewer grant (or ownership) implies visibility, so this needs no visible_models() around it: one
    # subquery fewer to plan in the inbox and the badge that every page counts.
    grants = ModelRole.objects.filter(
        Q(user_id=user.pk) | Q(group__in=user.groups.all()), model_id=OuterRef("pk"), role__gte=Role.REVIEWER
    )
    return RegisteredModel.objects.filter(Q(owner_id=user.pk) | Exists(grants))


def can_edit_card(user, model: RegisteredModel) -> bool:
    """Contributors and above write model cards and send them for review."""
    return has_model_role(user, model, Role.CONTRIBUTOR)


def review_policy(model: RegisteredModel) -> ReviewPolicy:
    """Return the model's review settings (the defaults, unsaved, when nobody changed them)."""
    policy = ReviewPolicy.objects.filter(model_id=model.pk).first()
    return policy if policy is not None else ReviewPolicy(model=model)


def is_compliance(user) -> bool:
    """True for members of the `compliance` group (cached on the user object for the request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    cached = getattr(user, "_stratum_compliance", None)
    if cached is None:
        cached = user.groups.filter(name=COMPLIANCE_GROUP).exists()
        user._stratum_compliance = cached
    return cached


def may_review_cards_of(user, model: RegisteredModel, policy: ReviewPolicy | None = None) -> bool:
    """True when the model's policy lets `user` approve or return its cards: a reviewer (the policy allowing
    reviewers) or a compliance member who can see the model (the policy allowing compliance)."""
    policy = policy if policy is not None else review_policy(model)
    if policy.card_approvers in (CardApprovers.REVIEWERS, CardApprovers.BOTH) and has_model_role(
            user, model, Role.REVIEWER):
        return True
    return policy.card_approvers in (CardApprovers.COMPLIANCE, CardApprovers.BOTH) and is_compliance(user) and \
        can_view(user, model)


def card_review_refusal(user, card) -> str | None:
    """Return why `user` may not approve or return `card` (None when they may): whom the model's policy names as
    card approvers, never the submitter."""
    policy = review_policy(card.model)
    if not may_review_cards_of(user, card.model, policy):
        who = {CardApprovers.REVIEWERS: "reviewers of the model",
               CardApprovers.COMPLIANCE: "the compliance group",
               CardApprovers.BOTH: "reviewers of the model and the compliance group"}[policy.card_approvers]
        return f"Only {who} may approve or return this model's cards."
    if card.submitted_by_id == user.pk:
        return "You sent this card for review; someone else must review it (four-eyes rule)."
    return None


def card_reviewable_filter(user) -> Q:
    """The cards `user` may review, as a filter on ModelCard (the SQL form of `may_review_cards_of`)."""
    no_policy = Q(model__review_policy__isnull=True)
    allows = lambda *who: no_policy | Q(model__review_policy__card_approvers__in=who)  # noqa: E731
    condition = Q(model__in=reviewable_models(user)) & allows(CardApprovers.REVIEWERS, CardApprovers.BOTH)
    if user is None or not user.is_authenticated:
        return condition
    # Membership is part of the query (not a query of its own), so the inbox badge stays one query.
    member = Exists(Group.objects.filter(pk__in=user.groups.values("pk"), name=COMPLIANCE_GROUP))
    return condition | (Q(member) & Q(model__in=visible_models(user))
                        & allows(CardApprovers.COMPLIANCE, CardApprovers.BOTH))


def can_set_review_policy(user, model: RegisteredModel) -> bool:
    """Maintainers decide who approves the model's cards and how complete a card must be to go for review."""
    return has_model_role(user, model, Role.MAINTAINER)


def can_archive_card(user, model: RegisteredModel) -> bool:
    """Maintainers archive model cards (archived cards are read-only)."""
    return has_model_role(user, model, Role.MAINTAINER)


COMPLIANCE_GROUP = "compliance"


def can_handle_erasure(user) -> bool:
    """Staff and members of the `compliance` group handle erasure requests and subject manifests."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.is_superuser or user.groups.filter(name=COMPLIANCE_GROUP).exists())


def require_erasure_handler(user) -> None:
    """Refuse whoever may not handle erasure requests (the one check every erasure service and read uses)."""
    if not can_handle_erasure(user):
        raise Forbidden("Only staff and the compliance group handle erasure requests.")
