"""Governance pages: the reviewer inbox, promotion requests, the audit trail, model history and protection."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views import View

from governance import audit, audit_display, charts, evidence, exports, gates, permissions, selectors, services
from governance.forms import (
    AuditFilterForm,
    DecisionForm,
    PromotionRequestForm,
    ProtectedTargetForm,
    ReviewPolicyForm,
    RollbackForm,
)
from governance.models import GATE_KEYS, GATE_LABELS, PromotionRequest, PromotionState, TargetKind
from registry import selectors as registry_selectors
from registry.errors import DomainError, Forbidden, NotFound
from registry.models import ModelVersion, RegisteredModel, Stage

AUDIT_PER_PAGE = 50


def raise_http(error: DomainError) -> None:
    """Turn a refusal into the HTTP answer a page gives: 403 for forbidden, 404 for not found."""
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.message)
    if isinstance(error, NotFound):
        raise Http404(error.message)


def page_model(request: HttpRequest, name: str) -> RegisteredModel:
    """Return the model a governance page is about, or answer 404/403 as the registry's pages do."""
    try:
        return registry_selectors.model_get(actor=request.user, name=name)
    except DomainError as error:
        raise_http(error)
        raise


def _promotion(request: HttpRequest, pk: int) -> PromotionRequest:
    try:
        return selectors.promotion_get(actor=request.user, pk=pk)
    except DomainError as error:
        raise_http(error)
        raise


class ReviewInboxView(LoginRequiredMixin, View):
    """"Waiting for me": open requests the user may decide, oldest first; and the user's own requests."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the inbox."""
        waiting = list(selectors.promotion_inbox(actor=request.user))
        cards = list(selectors.card_review_inbox(actor=request.user))
        mine = list(selectors.promotion_list(actor=request.user).filter(requested_by=request.user)[:20])
        recent = list(selectors.promotion_list(actor=request.user).exclude(state=PromotionState.OPEN)[:20])
        return render(request, "governance/inbox.html",
                      {"waiting": waiting, "cards": cards, "mine": mine, "recent": recent, "now": timezone.now()})


def _decision_context(request: HttpRequest, promotion: PromotionRequest, **extra: Any) -> dict[str, Any]:
    user = request.user
    decided = any(d.reviewer_id == user.pk and not d.stale for d in promotion.decisions.all())
    approval = permissions.can_approve(user, promotion)
    is_open = promotion.state == PromotionState.OPEN
    stale, stale_reasons = evidence.staleness(promotion)
    return {
        "promotion": promotion,
        "decisions": list(promotion.decisions.all()),
        "approvals": sum(1 for d in promotion.decisions.all() if d.decision == "approve" and not d.stale),
        "stale": stale,
        "stale_reasons": stale_reasons,
        "can_decide": is_open and bool(approval) and not decided,
        "refusal": (approval.reason or None) if is_open and not decided else None,
        "already_decided": decided,
        "can_cancel": promotion.state in (PromotionState.OPEN, PromotionState.APPROVED)
        and permissions.can_cancel(user, promotion),
        "can_execute": promotion.state == PromotionState.APPROVED and permissions.can_cancel(user, promotion),
        **extra,
    }


class PromotionDetailView(LoginRequiredMixin, View):
    """A request: candidate against the current holder, gates, justification, the thread, and the decision."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the request page."""
        promotion = _promotion(request, pk)
        comparison = selectors.promotion_comparison(request=promotion)
        live = promotion.state in (PromotionState.OPEN, PromotionState.APPROVED)
        gate_results = gates.evaluate(promotion) if live else promotion.gate_results
        holder = comparison.holder
        small_multiples = charts.metric_small_multiples(
            comparison.metrics, candidate_label=f"v{promotion.version.number}",
            holder_label=f"v{holder.number}" if holder else None)
        all_params = request.GET.get("params") == "all" or holder is None
        params = comparison.params if all_params else [row for row in comparison.params if row["changed"]]
        context = _decision_context(
            request, promotion, comparison=comparison, gate_results=gate_results, charts=small_multiples,
            blockers=[g for g in gate_results if g.get("blocking")] if live else [], live=live,
            params=params, all_params=all_params, unchanged_params=len(comparison.params) - len(params),
            form=DecisionForm(),
            approval_diffs=evidence.approval_diffs(promotion, list(promotion.decisions.all())) if live else [],
        )
        return render(request, "governance/promotion_detail.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Approve, reject, cancel or execute; htmx gets the decision panel back with the outcome."""
        promotion = _promotion(request, pk)
        form = DecisionForm(request.POST)
        error = None
        if form.is_valid():
            decision, comment = form.cleaned_data["decision"], form.cleaned_data["comment"]
            try:
                if decision == "approve":
                    promotion = services.promotion_approve(request=promotion, actor=request.user, comment=comment)
                elif decision == "reject":
                    promotion = services.promotion_reject(request=promotion, actor=request.user, comment=comment)
                elif decision == "cancel":
                    promotion = services.promotion_cancel(request=promotion, actor=request.user, comment=comment)
                else:
                    promotion = services.promotion_execute(request=promotion, actor=request.user)
            except DomainError as exc:
                error = exc.message
        else:
            error = "Choose approve or reject."
        promotion = _promotion(request, pk)
        outcome = None if error else _outcome(promotion)
        if not request.htmx:
            if error:
                messages.error(request, error)
            else:
                messages.success(request, outcome)
            return redirect("governance:promotion-detail", pk=pk)
        context = _decision_context(request, promotion, form=DecisionForm() if not error else form, error=error,
                                    outcome=outcome)
        return render(request, "governance/_decision_panel.html", context, status=400 if error else 200)


def _outcome(promotion: PromotionRequest) -> str:
    target = promotion.target_label
    if promotion.state == PromotionState.EXECUTED:
        return f"Executed: version {promotion.version.number} now holds {target}."
    if promotion.state == PromotionState.APPROVED:
        return "Approved, but a blocking gate holds the move back."
    if promotion.state == PromotionState.OPEN:
        approvals = sum(1 for d in promotion.decisions.all() if d.decision == "approve" and not d.stale)
        return f"Approval recorded ({approvals} of {promotion.approvals_required})."
    return f"The request is now {promotion.get_state_display().lower()}."


class PromotionCreateView(LoginRequiredMixin, View):
    """Open a promotion request from a version page (or from a stage or alias control on a protected target)."""

    def _targets(self, model: RegisteredModel) -> list[tuple[str, str]]:
        return [(f"{t.kind}:{t.name}", f"{t.label} ({t.approvals_required} approval(s))")
                for t in selectors.protected_target_list(model=model)]

    def _render(self, request: HttpRequest, model: RegisteredModel, version: ModelVersion,
                form: PromotionRequestForm, status: int = 200) -> HttpResponse:
        policies = list(selectors.protected_target_list(model=model))
        chosen = form["target"].value() or (f"{policies[0].kind}:{policies[0].name}" if policies else "")
        previews = [{"key": f"{p.kind}:{p.name}", "target": p, "chosen": f"{p.kind}:{p.name}" == chosen,
                     "gates": gates.evaluate_for(version, p)} for p in policies]
        for preview in previews:
            preview["blocking"] = [g for g in preview["gates"] if g["blocking"]]
        context = {"model": model, "version": version, "form": form, "previews": previews,
                   "reviewers": selectors.promotion_reviewers(version=version, requester=request.user),
                   "can_request": permissions.can_request_promotion(request.user, model)}
        return render(request, "governance/promotion_form.html", context, status=status)

    def _load(self, request: HttpRequest, name: str, number: int) -> tuple[RegisteredModel, ModelVersion]:
        model = page_model(request, name)
        try:
            return model, registry_selectors.version_get(model=model, number=number)
        except DomainError as error:
            raise Http404(error.message)

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Show the form with the model's protected targets (?target=kind:name picks one)."""
        model, version = self._load(request, name, number)
        targets = self._targets(model)
        wanted = request.GET.get("target", "")
        initial = {"target": wanted} if wanted in {key for key, _ in targets} else {}
        return self._render(request, model, version, PromotionRequestForm(targets=targets, initial=initial))

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Open the request and go to its page, or show what is wrong."""
        model, version = self._load(request, name, number)
        form = PromotionRequestForm(request.POST, targets=self._targets(model))
        if form.is_valid():
            kind, target = form.kind_and_target()
            try:
                promotion = services.promotion_request_create(
                    version=version, actor=request.user, kind=kind, target=target,
                    justification=form.cleaned_data["justification"])
            except DomainError as error:
                raise_http(error)
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Opened promotion request #{promotion.pk}.")
                return redirect("governance:promotion-detail", pk=promotion.pk)
        return self._render(request, model, version, form, status=400)


class AuditListView(LoginRequiredMixin, View):
    """The audit trail: filters, links to targets, export of the filtered range, and the chain's verdict."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the page (or stream an export when ?export=csv|json)."""
        form = AuditFilterForm(request.GET)
        form.is_valid()
        data = form.cleaned_data if form.is_bound else {}
        error, page = None, None
        try:
            qs = selectors.audit_list(
                actor=request.user, model=data.get("model") or None, username=data.get("actor") or None,
                action=data.get("action") or None, since=selectors.parse_moment(data.get("since"), "since"),
                until=selectors.parse_moment(data.get("until"), "until"))
        except DomainError as exc:
            error, qs = exc.message, None
        export = request.GET.get("export")
        if qs is not None and export in ("csv", "json"):
            return exports.export_response(qs, export)
        rows = []
        if qs is not None:
            page = Paginator(qs, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
            rows = [audit_row(event) for event in page.object_list]
        filters = {k: v for k, v in data.items() if v}
        verdict, verified_at = audit.verify_cached(force=request.GET.get("verify") == "1")
        context = {
            "form": form, "page": page, "rows": rows, "error": error, "verdict": verdict, "verified_at": verified_at,
            "actions": [(a, audit_display.action_label(a)) for a in selectors.audit_actions()],
            "query": urlencode(filters),
        }
        return render(request, "governance/audit_list.html", context, status=400 if error else 200)


def target_url(event: Any) -> str | None:
    """Return the page of an audit event's target, when it still has one."""
    return audit_display.target(event).url


def audit_row(event: Any) -> dict[str, Any]:
    """Return what the audit list shows of one event: plain labels, the linked target, key/value details."""
    details = audit_display.detail_rows(event.data)
    return {"event": event, "action": audit_display.action_label(event.action), "target": audit_display.target(event),
            "details": details, "summary": audit_display.detail_summary(details)}


class ModelHistoryView(LoginRequiredMixin, View):
    """A model's alias and stage timeline from the audit trail, what held each at a chosen time, and rollback."""

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """Render the timeline (optionally as of ?at=)."""
        model = page_model(request, name)
        error, at = None, None
        try:
            at = selectors.parse_moment(request.GET.get("at"), "at")
        except DomainError as exc:
            error = exc.message
        state = selectors.model_history(model=model, at=at)
        targets = list(selectors.protected_target_list(model=model))
        context = {"model": model, "state": state, "at_raw": request.GET.get("at", ""), "error": error,
                   "protected": targets, "rollback_form": RollbackForm(),
                   "can_request": permissions.can_request_promotion(request.user, model),
                   "requests": list(selectors.promotion_list(actor=request.user, model=model)[:20])}
        return render(request, "governance/model_history.html", context, status=400 if error else 200)

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Roll a target back: open a request, or execute an allowed emergency rollback."""
        model = page_model(request, name)
        form = RollbackForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give the target and a reason for the rollback.")
            return redirect("governance:model-history", name=model.name)
        raw = form.cleaned_data["target"]
        kind, _, target = raw.partition(":") if ":" in raw else ("", "", raw)
        try:
            promotion = services.promotion_rollback(model=model, actor=request.user, kind=kind or None,
                                                    target=target, reason=form.cleaned_data["reason"],
                                                    emergency=form.cleaned_data["emergency"])
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("governance:model-history", name=model.name)
        messages.success(request, _outcome(promotion) if promotion.state == PromotionState.EXECUTED
                         else f"Opened rollback request #{promotion.pk}.")
        return redirect("governance:promotion-detail", pk=promotion.pk)


GATE_HELP = {
    "artifact_scan": "Every file of the version scanned clean (none pending, none quarantined). Upload the files, "
                     "then scan or convert them from the version's \u201cScans and jobs\u201d page.",
    "signature": "The signed file tree matches the current files and its last verification passed. Sign the "
                 "version from its \u201cScans and jobs\u201d page.",
    "model_card": "The version's model card has every required field. Write it from the version's model card page.",
    "metrics": "Each metric rule holds against the version that holds the target now.",
}


def protection_rows(targets: list[Any]) -> list[dict[str, Any]]:
    """Each protected target with its gates marked required or advisory, for the settings page."""
    return [{"target": t, "gates": [{"key": key, "label": GATE_LABELS[key], "help": GATE_HELP[key],
                                     "required": key in (t.required_gates or [])} for key in GATE_KEYS]}
            for t in targets]


class ProtectionView(LoginRequiredMixin, View):
    """A model's protected targets and review settings; maintainers add, change and remove them."""

    def _render(self, request: HttpRequest, model: RegisteredModel, form: ProtectedTargetForm | None = None,
                policy_form: ReviewPolicyForm | None = None, status: int = 200) -> HttpResponse:
        policy = permissions.review_policy(model)
        context = {"model": model, "rows": protection_rows(list(selectors.protected_target_list(model=model))),
                   "form": form or ProtectedTargetForm(initial={"kind": TargetKind.STAGE}),
                   "policy": policy,
                   "policy_form": policy_form or ReviewPolicyForm(initial={
                       "card_approvers": policy.card_approvers,
                       "card_min_completeness": policy.card_min_completeness}),
                   "can_manage": permissions.can_manage_protection(request.user, model),
                   "stages": [Stage.STAGING, Stage.PRODUCTION]}
        return render(request, "governance/protection.html", context, status=status)

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """List the protected targets with the forms."""
        return self._render(request, page_model(request, name))

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Protect (or unprotect, with `remove`) a target, or change the review settings (with `policy`)."""
        model = page_model(request, name)
        if not permissions.can_manage_protection(request.user, model):
            raise PermissionDenied(f"Only maintainers of {model.name!r} may change its protected targets.")
        if request.POST.get("remove"):
            kind, _, target = request.POST["remove"].partition(":")
            try:
                services.protected_target_delete(model=model, actor=request.user, kind=kind, name=target)
            except DomainError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"{target} is no longer protected.")
            return redirect("governance:protection", name=model.name)
        if request.POST.get("policy"):
            policy_form = ReviewPolicyForm(request.POST)
            if policy_form.is_valid():
                try:
                    services.review_policy_set(model=model, actor=request.user, **policy_form.cleaned_data)
                except DomainError as error:
                    raise_http(error)
                    policy_form.add_error(None, error.message)
                else:
                    messages.success(request, "Review settings saved.")
                    return redirect("governance:protection", name=model.name)
            return self._render(request, model, policy_form=policy_form, status=400)
        form = ProtectedTargetForm(request.POST)
        if form.is_valid():
            try:
                target = services.protected_target_set(model=model, actor=request.user, **form.cleaned_data)
            except DomainError as error:
                raise_http(error)
                form.add_error(None, error.message)
            else:
                messages.success(request, f"{target.label} is protected ({target.approvals_required} approvals).")
                return redirect("governance:protection", name=model.name)
        return self._render(request, model, form, status=400)
