"""Render the technical documentation as a controlled PDF document: the card PDF's look, renderer and locked fetcher."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.template.loader import render_to_string
from weasyprint import HTML

from governance.cards.pdf import ASSET_BASE, LockedFetcher


def render_pdf(document: dict[str, Any], *, fetcher: LockedFetcher | None = None) -> bytes:
    """Render a generated document (hash and audit event included) as a PDF: cover, contents, nine sections, gaps."""
    html = render_to_string("governance/techdoc_pdf.html", {"doc": document, "asset_base": ASSET_BASE,
                                                            "sections": document["sections"]})
    return HTML(string=html, base_url=ASSET_BASE, url_fetcher=fetcher or LockedFetcher()).write_pdf(attachments=[])


def pdf_response(document: dict[str, Any]) -> HttpResponse:
    """Return a generated document as a PDF download carrying its hash (the page and the API share this)."""
    response = HttpResponse(render_pdf(document), content_type="application/pdf")
    response["Content-Disposition"] = (f'attachment; filename="{document["model"]}-v{document["version"]}'
                                       f'-technical-documentation.pdf"')
    response["X-Document-SHA256"] = document["sha256"]
    return response
