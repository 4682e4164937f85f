"""Comparison API: GET /api/v1/compare?versions=churn/3,churn/5 returns the comparison as JSON."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.compare import selectors as compare


class VersionCompareApi(APIView):
    """Compare 2-5 visible versions: metrics with deltas and best-per-row, params, datasets, code, signature."""

    @extend_schema(
        operation_id="versions_compare",
        parameters=[
            OpenApiParameter("versions", str, required=True,
                             description="2-5 comma-separated model/version refs, e.g. churn/3,churn/champion"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        """Return the comparison of the selected versions (the CSV export is on the compare page)."""
        comparison = compare.comparison_get(actor=request.user, selection=request.query_params.get("versions"))
        return Response(compare.comparison_as_json(comparison))
