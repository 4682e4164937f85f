"""Technical documentation API: a version's EU AI Act Annex IV document (?format=json|pdf), audited per generation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api.cards import IgnoreFormatParam
from governance.techdoc import pdf, services
from registry import selectors as registry_selectors


class TechnicalDocumentationApi(APIView):
    """GET the nine Annex IV sections of a version with their gaps, as JSON or PDF; each generation is audited."""

    content_negotiation_class = IgnoreFormatParam

    @extend_schema(operation_id="model_version_technical_documentation_get",
                   parameters=[OpenApiParameter("format", str, enum=list(services.FORMATS),
                                                description="json (default) or pdf")],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT,
                              (200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, name: str, ref: str) -> Any:
        fmt = services.techdoc_format(request.query_params.get("format"))
        model = registry_selectors.model_get(actor=request.user, name=name)
        version = registry_selectors.version_resolve(model=model, ref=ref)
        generated = services.techdoc_generate(version=version, actor=request.user, fmt=fmt)
        if fmt == "pdf":
            return pdf.pdf_response(generated.document)
        response = Response(generated.document)
        response["X-Document-SHA256"] = generated.document["sha256"]
        return response
