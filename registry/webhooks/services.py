"""Webhooks: subscriptions, Standard Webhooks signing, SSRF-guarded delivery with retries, log, replay and test.

Delivery resolves the host itself, refuses any address that is loopback, private, link-local, CGNAT, multicast,
reserved or hides one (IPv4-mapped, 6to4, NAT64, Teredo) unless STRATUM_WEBHOOK_ALLOWED_NETWORKS names it, and
connects to exactly the address it checked (so DNS rebinding cannot swap it). Proxies from the environment are
never used and redirects are never followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import secrets
import socket
import ssl
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry import events, permissions
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.models import Job, JobKind, ModelVersion, RegisteredModel, WebhookDelivery, WebhookSubscription
from registry.pipeline import jobs

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 6
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class Refused(Exception):
    """The target address is not allowed (SSRF guard)."""


class RetryLater(Exception):
    """A transient failure (429, 5xx, timeout, connection error): try again after a backoff."""

    retryable = True

    def __init__(self, message: str, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


# ------------------------------------------------------------------------------------------------ signing


def new_secret() -> str:
    """Return a fresh Standard Webhooks secret (whsec_ + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value: v1,<base64 HMAC-SHA256 of id.timestamp.body>."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# ------------------------------------------------------------------------------------------------ SSRF guard


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr.sixtofour:
        return addr.sixtofour
    if addr.teredo:
        return addr.teredo[1]
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in getattr(settings, "STRATUM_WEBHOOK_ALLOWED_NETWORKS", [])]


def address_refusal(address: str) -> str:
    """Return why an address may not be called ("" when it may)."""
    addr = ipaddress.ip_address(address.split("%", 1)[0])
    if any(addr in net for net in _allowed_networks()):
        return ""
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            if any(inner in net for net in _allowed_networks()):
                return ""
            candidates.append(inner)
    for a in candidates:
        if a.is_loopback:
            return f"{address} is a loopback address"
        if a.is_link_local:
            return f"{address} is link-local (cloud metadata lives there)"
        if isinstance(a, ipaddress.IPv4Address) and a in _CGNAT:
            return f"{address} is carrier-grade NAT space"
        if a.is_multicast:
            return f"{address} is multicast"
        if a.is_private or a.is_reserved or a.is_unspecified or not a.is_global:
            return f"{address} is a private or reserved address"
    return ""


def check_url(url: str) -> tuple[str, str, int, str]:
    """Validate a webhook URL's form; return (scheme, host, port, path)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("A webhook URL must be http:// or https:// with a host.")
    if parts.username or parts.password:
        raise InvalidInput("A webhook URL may not carry credentials.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def resolve_checked(host: str, port: int) -> str:
    """Resolve `host` now and return one allowed address; refuse if any address it resolves to is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RetryLater(f"DNS lookup of {host} failed ({exc})", 60) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise Refused(f"Refused to call {host}: {reason}.")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address checked at connect time (no proxies, no second lookup)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, verifying the certificate of the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> tuple[int, int]:
    """POST `body` to `url` through the SSRF guard; return (status code, latency ms). Never follows redirects."""
    scheme, host, port, path = check_url(url)
    address = resolve_checked(host, port)
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host, port, address, timeout)
    started = time.perf_counter()
    try:
        conn.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json",
                                                         "User-Agent": "Stratum-Webhooks/1"})
        response = conn.getresponse()
        response.read(64 * 1024)  # drain a little; the body is never stored or shown
        return response.status, int((time.perf_counter() - started) * 1000)
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------ services


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


def subscriptions_visible(actor: Any):
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


def _backoff(attempt: int) -> float:
    base = float(getattr(settings, "STRATUM_WEBHOOK_BACKOFF_SECONDS", 5))
    return base * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # exponential with full jitter


def delivery_run(job: Job) -> dict[str, Any]:
    """Perform one delivery attempt; raise RetryLater on 429/5xx/timeouts so the job is retried with backoff."""
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=job.params["delivery"])
    sub = delivery.subscription
    if delivery.state == WebhookDelivery.State.DELIVERED:
        return {"status": delivery.status_code}
    if not sub.active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=WebhookDelivery.State.FAILED,
                                                              error="subscription disabled")
        return {"skipped": "subscription disabled"}
    body = json.dumps({"type": delivery.event_type, "timestamp": delivery.created_at.isoformat(),
                       "data": delivery.payload}, sort_keys=True).encode()
    ts = int(time.time())
    headers = {"webhook-id": delivery.message_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(sub.secret, delivery.message_id, ts, body)}
    attempts = delivery.attempts + 1
    status, latency, error, refused = None, None, "", False
    try:
        status, latency = post(sub.url, body, headers)
    except Refused as exc:
        error, refused = str(exc), True
    except (TimeoutError, OSError, http.client.HTTPException, RetryLater) as exc:
        error = f"{exc.__class__.__name__}: {exc}"
    fields: dict[str, Any] = {"attempts": attempts, "status_code": status, "latency_ms": latency,
                              "error": error[:500]}
    retry = (status is None and not refused) or status == 429 or (status or 0) >= 500
    if status is not None and 200 <= status < 300:
        fields.update(state=WebhookDelivery.State.DELIVERED, delivered_at=timezone.now(), error="")
    elif retry and job.attempts < job.max_attempts:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        raise RetryLater(f"attempt {attempts}: {status or error}", _backoff(attempts))
    else:
        fields["state"] = WebhookDelivery.State.FAILED
        if status is not None and 300 <= status < 400:
            fields["error"] = f"redirect {status} not followed"
        if status == 410:
            WebhookSubscription.objects.filter(pk=sub.pk).update(active=False,
                                                                 disabled_reason="The receiver answered 410 Gone.")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return {"status": status, "latency_ms": latency, "attempts": attempts}


# ------------------------------------------------------------------------------------------------ plug point


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


jobs.register_handler(JobKind.WEBHOOK, delivery_run)
