"""Model card pages: the card with its state, completeness and history; the section form; exports."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from governance import permissions
from governance import selectors as governance_selectors
from governance.cards import exports, jobs, pdf, schema, selectors, services
from governance.cards.forms import CardSectionForm
from governance.models import CardState, ExportState, ModelCard
from governance.views import page_model, raise_http
from registry import selectors as registry_selectors
from registry.artifacts.storage import artifact_storage
from registry.errors import DomainError
from registry.markdown import render_markdown
from registry.models import ModelVersion, RegisteredModel

ACTIONS = {"submit", "approve", "return", "reopen", "archive", "refresh", "create"}


def _version(request: HttpRequest, name: str, number: int) -> tuple[RegisteredModel, ModelVersion]:
    model = page_model(request, name)
    try:
        return model, registry_selectors.version_get(model=model, number=number)
    except DomainError as error:
        raise Http404(error.message)


def _sections(card: ModelCard) -> list[dict[str, Any]]:
    out = []
    missing = set(card.missing)
    for section in schema.SECTIONS:
        values = card.content.get(section["key"], {})
        fields = []
        for key, label, kind in section["fields"]:
            value = values.get(key)
            fields.append({"key": key, "label": label, "kind": kind, "value": value,
                           "html": render_markdown(value) if kind == "md" and value else "",
                           "missing": f"{section['key']}.{key}" in missing})
        section_missing = [p for p in card.missing if p.startswith(section["key"] + ".")]
        out.append({"key": section["key"], "title": section["title"], "fields": fields, "missing": section_missing,
                    "datasets": values.get("datasets")})
    return out


def _flags(user: Any, card: ModelCard | None, model: RegisteredModel) -> dict[str, Any]:
    can_edit = permissions.can_edit_card(user, model)
    if card is None:
        return {"can_create": can_edit}
    review_refusal = permissions.card_review_refusal(user, card)
    threshold = permissions.review_policy(model).card_min_completeness
    return {
        "submit_refusal": services.submit_refusal(card, threshold) if card.state == CardState.DRAFT else None,
        "card_threshold": threshold,
        "can_edit": can_edit and card.state == CardState.DRAFT,
        "can_submit": can_edit and card.state == CardState.DRAFT,
        "can_review": card.state == CardState.IN_REVIEW and review_refusal is None,
        "review_refusal": review_refusal if card.state == CardState.IN_REVIEW else None,
        "can_reopen": can_edit and card.state == CardState.APPROVED,
        "can_archive": permissions.can_archive_card(user, model) and card.state != CardState.ARCHIVED,
    }


class CardView(LoginRequiredMixin, View):
    """A version's model card: sections, completeness with what is missing, state actions, history, exports."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Render the card page (or the invitation to create one)."""
        model, version = _version(request, name, number)
        card = selectors.card_for_version(version=version)
        context: dict[str, Any] = {"model": model, "version": version, "card": card,
                                   **_flags(request.user, card, model)}
        if card is not None:
            context.update(sections=_sections(card), history=list(selectors.card_history(card=card)[:50]),
                           card_reviewers=governance_selectors.card_reviewers(card=card),
                           missing_labels=[schema.label_of(p) for p in card.missing],
                           details=card.content.get("model_details", {}))
        return render(request, "governance/card_detail.html", context)

    def post(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Create the card or move it through its states."""
        model, version = _version(request, name, number)
        action = request.POST.get("action", "")
        comment = request.POST.get("comment", "")
        if action not in ACTIONS:
            messages.error(request, "Unknown card action.")
            return redirect("governance:card", name=model.name, number=version.number)
        try:
            if action == "create":
                services.card_create(version=version, actor=request.user)
                messages.success(request, "Model card created as a draft, pre-filled from the registry.")
            else:
                card = selectors.card_get(version=version)
                do = {"submit": lambda: services.card_submit(card=card, actor=request.user),
                      "approve": lambda: services.card_approve(card=card, actor=request.user, comment=comment),
                      "return": lambda: services.card_return(card=card, actor=request.user, comment=comment),
                      "reopen": lambda: services.card_reopen(card=card, actor=request.user, reason=comment),
                      "archive": lambda: services.card_archive(card=card, actor=request.user, reason=comment),
                      "refresh": lambda: services.card_refresh(card=card, actor=request.user)}[action]
                card = do()
                messages.success(request, f"Model card is now {card.get_state_display().lower()} "
                                          f"(revision {card.revision}).")
        except DomainError as error:
            raise_http(error)
            messages.error(request, error.message)
        return redirect("governance:card", name=model.name, number=version.number)


class CardEditView(LoginRequiredMixin, View):
    """Edit one section of a draft card; Save moves on to the next section."""

    def _card(self, request: HttpRequest, name: str, number: int, section: str
              ) -> tuple[RegisteredModel, ModelVersion, ModelCard]:
        if section not in schema.SECTION_KEYS:
            raise Http404(f"No card section {section!r}.")
        model, version = _version(request, name, number)
        card = selectors.card_for_version(version=version)
        if card is None:
            raise Http404("This version has no model card yet.")
        return model, version, card

    def _render(self, request: HttpRequest, model: RegisteredModel, version: ModelVersion, card: ModelCard,
                section: str, form: CardSectionForm, status: int = 200) -> HttpResponse:
        index = schema.SECTION_KEYS.index(section)
        context = {"model": model, "version": version, "card": card, "form": form, "section": form.section,
                   "sections": schema.SECTIONS, "current": section,
                   "next_section": schema.SECTION_KEYS[index + 1] if index + 1 < len(schema.SECTION_KEYS) else None,
                   **_flags(request.user, card, model)}
        return render(request, "governance/card_form.html", context, status=status)

    def get(self, request: HttpRequest, name: str, number: int, section: str) -> HttpResponse:
        """Show the section's form."""
        model, version, card = self._card(request, name, number, section)
        form = CardSectionForm(section=section, content=card.content)
        return self._render(request, model, version, card, section, form)

    def post(self, request: HttpRequest, name: str, number: int, section: str) -> HttpResponse:
        """Save the section, then go to the next one (or back to the card)."""
        model, version, card = self._card(request, name, number, section)
        form = CardSectionForm(request.POST, section=section, content=card.content)
        if form.is_valid():
            try:
                card = services.card_update(card=card, actor=request.user, section=section, values=form.values(),
                                            note=form.cleaned_data.get("note", ""))
            except DomainError as error:
                raise_http(error)
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Saved {form.section['title']} (card {card.completeness}% complete).")
                nxt = request.POST.get("next")
                if nxt in schema.SECTION_KEYS:
                    return redirect("governance:card-edit", name=model.name, number=version.number, section=nxt)
                return redirect("governance:card", name=model.name, number=version.number)
        return self._render(request, model, version, card, section, form, status=400)


class CardExportView(LoginRequiredMixin, View):
    """Download a card as PDF, JSON, Model Card Toolkit JSON or Markdown."""

    def get(self, request: HttpRequest, name: str, number: int, fmt: str) -> HttpResponse:
        """Return the export as an attachment."""
        if fmt not in exports.FORMATS:
            raise Http404(f"Unknown export format {fmt!r}.")
        _model_obj, version = _version(request, name, number)
        card = selectors.card_for_version(version=version)
        if card is None:
            raise Http404("This version has no model card yet.")
        return exports.export_response(card, fmt, request.user)


class ModelCardsPdfView(LoginRequiredMixin, View):
    """Every card of a model in one PDF."""

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """Return the combined PDF."""
        model = page_model(request, name)
        cards = list(selectors.cards_of_model(model=model))
        if not cards:
            raise Http404(f"{model.name!r} has no model cards yet.")
        response = HttpResponse(pdf.render_pdf(cards, request.user), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{model.name}-model-cards.pdf"'
        return response


class CardExportJobCreateView(LoginRequiredMixin, View):
    """Start a background export of every card of a model."""

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        """Queue the job and show its progress page."""
        model = page_model(request, name)
        try:
            job = jobs.card_export_request(model=model, actor=request.user)
        except DomainError as error:
            raise_http(error)
            messages.error(request, error.message)
            return redirect("registry:model-detail", name=model.name)
        return redirect("governance:card-export-job", pk=job.pk)


class CardExportJobView(LoginRequiredMixin, View):
    """A background export's progress (polled by htmx while it runs) and, when done, its download."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the progress (or stream the PDF with ?download=1)."""
        try:
            job = jobs.card_export_get(actor=request.user, pk=pk)
        except DomainError as error:
            raise Http404(error.message)
        if request.GET.get("download") == "1":
            if job.state != ExportState.DONE:
                raise Http404("The export is not ready yet.")
            response = FileResponse(artifact_storage().open(job.file_name, "rb"), content_type="application/pdf",
                                    as_attachment=True, filename=f"{job.model.name}-model-cards.pdf")
            return response
        template = "governance/_card_export_job.html" if request.htmx else "governance/card_export_job.html"
        return render(request, template, {"job": job, "model": job.model})
