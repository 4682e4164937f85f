"""AI-BOM API: a version's CycloneDX ML-BOM (JSON), the one its latest signature covers when it has one."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.cards import bom
from registry import selectors as registry_selectors


class VersionBomApi(APIView):
    """GET the version's CycloneDX 1.7 ML-BOM; the X-Stratum-Bom-Signed header says whether a signature covers it."""

    @extend_schema(operation_id="model_version_bom_get",
                   responses={(200, bom.MEDIA_TYPE): OpenApiTypes.OBJECT})
    def get(self, request: Request, name: str, ref: str) -> HttpResponse:
        model = registry_selectors.model_get(actor=request.user, name=name)
        version = registry_selectors.version_resolve(model=model, ref=ref)
        data, signed = bom.bom_get(version=version)
        response = HttpResponse(data, content_type=bom.MEDIA_TYPE)
        response["X-Stratum-Bom-Signed"] = "true" if signed else "false"
        response["Content-Disposition"] = f'inline; filename="{model.name}-v{version.number}.cdx.json"'
        return response
