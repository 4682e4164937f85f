"""The prediction trace page: paste a request id (the gateway's X-Request-Id), see what answered it and from what."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from deployments import selectors
from registry.errors import DomainError


class PredictionTraceView(LoginRequiredMixin, View):
    """`/predictions/?id=…` redirects to the trace; `/predictions/<id>/` shows it, or says why it cannot."""

    template_name = "deployments/prediction_trace.html"

    def get(self, request: HttpRequest, request_id: str | None = None) -> HttpResponse:
        """Show the trace of `request_id`, or the empty lookup form."""
        asked = (request.GET.get("id") or "").strip()
        if request_id is None and asked:
            return redirect("deployments:prediction-trace", request_id=asked)
        context: dict = {"request_id": request_id or "", "trace": None, "error": None}
        status = 200
        if request_id is not None:
            try:
                context["trace"] = selectors.prediction_trace(actor=request.user, request_id=request_id)
            except DomainError as error:
                context["error"], status = error.message, error.status
        return render(request, self.template_name, context, status=status)
