"""Webhook subscriptions: subscribe, remove, list, replay a logged event, send a test, and the plug point that
fans committed domain events out to the subscriptions that want them. Sending is in webhooks.delivery.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from registry import events, permissions
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.locking import model_lock
from registry.models import Job, JobKind, ModelVersion, RegisteredModel, WebhookDelivery, WebhookSubscription
from registry.pipeline import jobs
from registry.webhooks.delivery import MAX_ATTEMPTS, Refused, RetryLater, check_url, new_secret, post, sign


def _can_manage(actor: Any, model: RegisteredModel | None) -> bool:
    if model is None:
        return bool(getattr(actor, "is_staff", False))
    return permissions.can_maintain(actor, model)


def subscription_create(*, actor: Any, url: str, event_types: list[str] | None = None,
                        model: RegisteredModel | None = None) -> tuple[WebhookSubscription, str]:
    """Subscribe `url` to events (maintainers of the model; staff registry-wide); return it and its secret."""
    if not _can_manage(actor, model):
        raise Forbidden("Only maintainers of the model (or staff, registry-wide) manage webhooks.")
    check_url(url)
    types = [str(t) for t in (event_types or [])]
    if any(not t or len(t) > 100 for t in types):
        raise InvalidInput("Event types are non-empty names such as model_version.created.")
    secret = new_secret()
    with transaction.atomic():
        if model is not None:
            model = model_lock(model)  # the lock order of registry/locking.py: the model first
        sub = WebhookSubscription.objects.create(model=model, url=url, event_types=types, secret=secret,
                                                 created_by=actor)
        events.emit("webhook.created", actor=actor, target=sub,
                    data={"url": url, "event_types": types, "model": model.name if model else None})
    return sub, secret


def subscription_delete(*, actor: Any, subscription: WebhookSubscription) -> None:
    """Remove a subscription and its log."""
    if not _can_manage(actor, subscription.model):
        raise Forbidden("Only maintainers of the model (or staff, registry-wide) manage webhooks.")
    with transaction.atomic():
        events.emit("webhook.deleted", actor=actor, target=subscription, data={"url": subscription.url})
        subscription.delete()


def subscriptions_visible(actor: Any) -> QuerySet[WebhookSubscription]:
    """Return the subscriptions `actor` manages."""
    qs = WebhookSubscription.objects.select_related("model")
    if getattr(actor, "is_staff", False):
        return qs
    models = [m.pk for m in permissions.visible_models(actor) if permissions.can_maintain(actor, m)]
    return qs.filter(model_id__in=models)


def subscription_get(*, actor: Any, pk: int) -> WebhookSubscription:
    """Return one subscription the actor manages, or raise NotFound."""
    sub = subscriptions_visible(actor).filter(pk=pk).first()
    if sub is None:
        raise NotFound(f"Webhook {pk} not found.")
    return sub


def delivery_enqueue(delivery: WebhookDelivery) -> Job:
    """Queue (or re-queue) the delivery job of a log row."""
    return jobs.job_enqueue(kind=JobKind.WEBHOOK, key=f"webhook:{delivery.pk}:{delivery.attempts}",
                            label=f"{delivery.event_type} → {delivery.subscription.url}"[:500],
                            params={"delivery": delivery.pk}, max_attempts=MAX_ATTEMPTS)


def delivery_replay(*, actor: Any, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a logged event again as a new delivery with the same message id."""
    if not _can_manage(actor, delivery.subscription.model):
        raise Forbidden("Only maintainers of the model (or staff, registry-wide) manage webhooks.")
    with transaction.atomic():
        copy = WebhookDelivery.objects.create(subscription=delivery.subscription, message_id=delivery.message_id,
                                              event_type=delivery.event_type, payload=delivery.payload)
        delivery_enqueue(copy)
    return copy


def send_test(*, actor: Any, subscription: WebhookSubscription) -> dict[str, Any]:
    """Send a signed webhook.test event now; return only the status code and latency (never the body)."""
    if not _can_manage(actor, subscription.model):
        raise Forbidden("Only maintainers of the model (or staff, registry-wide) manage webhooks.")
    message_id, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    body = json.dumps({"type": "webhook.test", "timestamp": timezone.now().isoformat(), "data": {}}).encode()
    headers = {"webhook-id": message_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(subscription.secret, message_id, ts, body)}
    try:
        status, latency = post(subscription.url, body, headers)
    except (Refused, RetryLater, OSError) as exc:
        return {"status": None, "latency_ms": None, "error": str(exc)[:300]}
    return {"status": status, "latency_ms": latency}


# ------------------------------------------------------------------------------------------- plug point


def _event_model_id(event: Any) -> int | None:
    if event.target_type == "registry.registeredmodel":
        return event.target_id
    if event.target_type == "registry.modelversion":
        if isinstance(event.instance, ModelVersion) and event.instance.model_id is not None:
            return event.instance.model_id
        return ModelVersion.objects.filter(pk=event.target_id).values_list("model_id", flat=True).first()
    model_id = event.data.get("model_id")  # other apps' events (deployments) name their model
    return model_id if isinstance(model_id, int) else None


_ACTIVE_SUBSCRIPTIONS = WebhookSubscription.objects.filter(active=True)  # .all() runs it afresh for each event


def on_domain_event_committed(sender: Any, event: Any, **kwargs: Any) -> None:
    """Fan a committed domain event out to the subscriptions that want it."""
    if event.action.startswith("webhook."):
        return
    subs = _ACTIVE_SUBSCRIPTIONS.all()
    if not subs:
        return
    model_id = _event_model_id(event)
    payload = {"action": event.action, "target": {"type": event.target_type, "id": event.target_id,
                                                  "label": event.target_label},
               "actor": getattr(event.actor, "username", None), "data": event.data}
    for sub in subs:
        if sub.model_id is not None and sub.model_id != model_id:
            continue
        if sub.event_types and event.action not in sub.event_types:
            continue
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(subscription=sub, message_id=f"msg_{uuid.uuid4().hex}",
                                                      event_type=event.action, payload=json.loads(
                                                          json.dumps(payload, default=str)))
            delivery_enqueue(delivery)
