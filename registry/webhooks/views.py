"""Webhook pages: subscribe (secret shown once), the delivery log with replay, a test send, and removal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views import View

from registry import selectors
from registry.errors import DomainError, NotFound
from registry.webhooks import services as webhooks


def _subscription(request: HttpRequest, pk: int):
    try:
        return webhooks.subscription_get(actor=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message)


class WebhookListView(LoginRequiredMixin, View):
    """The webhooks you manage, and a form to subscribe one."""

    def _render(self, request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
        context = {"subscriptions": list(webhooks.subscriptions_visible(request.user)), **extra}
        response = render(request, "registry/webhooks.html", context, status=status)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        """List subscriptions."""
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Subscribe a URL; the secret is shown in this response only."""
        url = request.POST.get("url", "").strip()
        name = request.POST.get("model", "").strip()
        types = [t.strip() for t in request.POST.get("event_types", "").split(",") if t.strip()]
        try:
            model = selectors.model_get(actor=request.user, name=name) if name else None
            sub, secret = webhooks.subscription_create(actor=request.user, url=url, event_types=types, model=model)
        except DomainError as error:
            return self._render(request, status=400, error=error.message, form={"url": url, "model": name,
                                                                                "event_types": ", ".join(types)})
        return self._render(request, created=sub, secret=secret)


class WebhookDetailView(LoginRequiredMixin, View):
    """One webhook's delivery log; POST replays a delivery, sends a test, or removes the webhook."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the delivery log."""
        sub = _subscription(request, pk)
        context = {"sub": sub, "deliveries": list(sub.deliveries.all()[:100])}
        return render(request, "registry/webhook_detail.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Replay, test or delete."""
        sub = _subscription(request, pk)
        try:
            if request.POST.get("action") == "delete":
                webhooks.subscription_delete(actor=request.user, subscription=sub)
                messages.success(request, "Webhook removed.")
                return redirect("registry:webhook-list")
            if request.POST.get("action") == "test":
                result = webhooks.send_test(actor=request.user, subscription=sub)
                if result.get("status") is None:
                    messages.error(request, f"Test not delivered: {result.get('error', 'no answer')}.")
                else:
                    messages.success(request, f"Test answered {result['status']} in {result['latency_ms']} ms.")
            elif request.POST.get("replay"):
                delivery = sub.deliveries.filter(pk=request.POST["replay"]).first()
                if delivery is None:
                    raise NotFound("No such delivery.")
                webhooks.delivery_replay(actor=request.user, delivery=delivery)
                messages.success(request, f"Replaying {delivery.event_type} ({delivery.message_id}).")
        except DomainError as error:
            messages.error(request, error.message)
        return redirect("registry:webhook-detail", pk=sub.pk)
