"""Webhook data: who is told about which domain events, and each delivery attempt's record."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WebhookSubscription(models.Model):
    """An endpoint that receives events of one model (or of the whole registry) signed per Standard Webhooks."""

    model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="webhooks")
    url = models.URLField(max_length=2048)
    event_types = models.JSONField(default=list, blank=True)  # empty: every event
    secret = models.CharField(max_length=100)  # whsec_<base64>; shown to the creator once
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"webhook {self.pk} → {self.url}"


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one subscription: the delivery log row, with its latest attempt."""

    class State(models.TextChoices):
        """Where a delivery is."""

        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} → webhook {self.subscription_id} ({self.state})"
