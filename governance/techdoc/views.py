"""Technical documentation page route: the version's Annex IV document as a PDF download, for anyone who may view
the model (the same service as the API, so each download is audited)."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.views import View

from governance.techdoc import pdf, services
from governance.views import page_model
from registry import selectors as registry_selectors
from registry.errors import DomainError


class TechnicalDocumentationView(LoginRequiredMixin, View):
    """Download the version's technical documentation (EU AI Act Annex IV) as a PDF."""

    def get(self, request: HttpRequest, name: str, number: int) -> HttpResponse:
        """Generate, audit and return the PDF."""
        model = page_model(request, name)
        try:
            version = registry_selectors.version_get(model=model, number=number)
        except DomainError as error:
            raise Http404(error.message)
        return pdf.pdf_response(services.techdoc_generate(version=version, actor=request.user, fmt="pdf").document)
