"""Webhooks against a real receiver on 127.0.0.1: Standard Webhooks signatures, retries, 3xx, 410, SSRF guard."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from registry.models import WebhookDelivery, WebhookSubscription
from registry.webhooks import delivery as webhook_delivery
from registry.webhooks import services as webhooks

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server that answers with scripted status codes and records what it was sent."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.script.pop(0) if receiver.script else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"secret!")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.STRATUM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.STRATUM_WEBHOOK_BACKOFF_SECONDS = 0
    r = Receiver()
    yield r
    r.close()


def verify_standard_webhook(secret: str, headers: dict, body: bytes) -> dict:
    """Verify a delivery with the Standard Webhooks reference library (independent of the code under test)."""
    return Webhook(secret).verify(body, headers)


def subscribe(client, url, **extra):
    response = client.post("/api/v1/webhooks", {"url": url, "model": "churn", **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_events_are_delivered_signed_and_logged(receiver, registered_model, owner, api_client_for, make_version,
                                                django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # proxies from the environment are ignored
    client = api_client_for(owner)
    sub = subscribe(client, receiver.url, event_types=["model_version.created"])
    assert sub["secret"].startswith("whsec_")
    assert "secret" not in client.get("/api/v1/webhooks").json()["webhooks"][0]
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model, files={"a.txt": b"a"})
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert verify_standard_webhook(sub["secret"], headers, request["body"])["type"] == "model_version.created"
    assert headers["webhook-id"].startswith("msg_")
    tampered = request["body"].replace(b"model_version.created", b"model_version.deleted")
    assert tampered != request["body"]
    for body, hdrs, secret in ((tampered, headers, sub["secret"]),
                               (request["body"], {**headers, "webhook-id": "msg_other"}, sub["secret"]),
                               (request["body"], headers, "whsec_" + "QUJD" * 8)):
        with pytest.raises(WebhookVerificationError):
            verify_standard_webhook(secret, hdrs, body)
    log = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json()["deliveries"]
    assert log[0]["state"] == "delivered" and log[0]["status_code"] == 200 and log[0]["attempts"] == 1
    assert log[0]["latency_ms"] is not None and "secret!" not in json.dumps(log)
    with django_capture_on_commit_callbacks(execute=True):
        replay = client.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{log[0]['id']}/replay")
    assert replay.status_code == 202
    assert receiver.requests[1]["headers"]["webhook-id"] == headers["webhook-id"]
    assert verify_standard_webhook(sub["secret"], receiver.requests[1]["headers"], receiver.requests[1]["body"])
    test = client.post(f"/api/v1/webhooks/{sub['id']}/test").json()
    assert set(test) == {"status", "latency_ms"} and test["status"] == 200
    ping = receiver.requests[2]
    assert verify_standard_webhook(sub["secret"], ping["headers"], ping["body"])  # the test ping is signed too


def test_retries_on_5xx_and_429_then_delivers(receiver, registered_model, owner, api_client_for, make_version,
                                              django_capture_on_commit_callbacks):
    subscribe(api_client_for(owner), receiver.url)
    receiver.script = [500, 429, 503, 200]
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model)
    delivery = WebhookDelivery.objects.get(event_type="model_version.created")
    assert delivery.state == "delivered" and delivery.attempts == 4 and len(receiver.requests) == 4


def test_redirects_fail_without_being_followed_and_410_disables(receiver, registered_model, owner, api_client_for,
                                                                make_version, django_capture_on_commit_callbacks):
    subscribe(api_client_for(owner), receiver.url)
    receiver.script = [302]
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed" and "redirect" in delivery.error
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    receiver.script = [410]
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model)
    sub = WebhookSubscription.objects.get()
    assert not sub.active and "410" in sub.disabled_reason


def test_loopback_is_refused_unless_allowlisted(settings, registered_model, owner, api_client_for, make_version,
                                               django_capture_on_commit_callbacks):
    r = Receiver()
    try:
        settings.STRATUM_WEBHOOK_ALLOWED_NETWORKS = []
        subscribe(api_client_for(owner), r.url)
        with django_capture_on_commit_callbacks(execute=True):
            make_version(registered_model)
        delivery = WebhookDelivery.objects.get()
        assert delivery.state == "failed" and "loopback" in delivery.error and delivery.attempts == 1
        assert r.requests == []
    finally:
        r.close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",  # noqa: S104
    "224.0.0.1",
    "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "2002:7f00:1::1", "64:ff9b::a9fe:a9fe", "ff02::1",
])
def test_private_and_wrapped_addresses_are_refused(address):
    assert webhook_delivery.address_refusal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert webhook_delivery.address_refusal(address) == ""


def test_names_are_checked_at_connect_time(monkeypatch):
    """A name that resolves (or rebinds) to a private address is refused; the checked address is what we dial."""
    def fake_getaddrinfo(host, port, *args, **kwargs):
        addresses = {"rebind.example": ["93.184.216.34", "127.0.0.1"], "meta.example": ["169.254.169.254"]}[host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for host in ("rebind.example", "meta.example"):
        with pytest.raises(webhook_delivery.Refused):
            webhook_delivery.post(f"http://{host}/hook", b"{}", {})


def test_only_http_and_https_and_managers(api_client_for, owner, outsider, registered_model):
    client = api_client_for(owner)
    for url in ("ftp://example.com/x", "file:///etc/passwd", "http://user:pw@example.com/", "gopher://x"):
        assert client.post("/api/v1/webhooks", {"url": url, "model": "churn"}, format="json").status_code == 400
    assert client.post("/api/v1/webhooks", {"url": "https://example.com/h"}, format="json").status_code == 403
    assert api_client_for(outsider).post("/api/v1/webhooks", {"url": "https://example.com/h", "model": "churn"},
                                         format="json").status_code == 404


def test_webhook_pages_show_secret_once_log_replay_and_test(receiver, client, owner, registered_model, make_version,
                                                            django_capture_on_commit_callbacks):
    client.force_login(owner)
    page = client.post("/webhooks/", {"url": receiver.url, "model": "churn", "event_types": "model_version.created"})
    secret = WebhookSubscription.objects.get().secret
    assert page.status_code == 200 and secret in page.content.decode()
    assert secret not in client.get("/webhooks/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        make_version(registered_model)
    sub = WebhookSubscription.objects.get()
    html = client.get(f"/webhooks/{sub.pk}/").content.decode()
    assert "model_version.created" in html and "Delivered" in html and "Replay" in html
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhooks/{sub.pk}/", {"replay": delivery.pk})
    assert WebhookDelivery.objects.count() == 2 and len(receiver.requests) == 2
    receiver.script = [201]
    html = client.post(f"/webhooks/{sub.pk}/", {"action": "test"}, follow=True).content.decode()
    assert "Test answered 201 in" in html and "secret!" not in html
    assert client.post("/webhooks/", {"url": "ftp://x/y", "model": "churn"}).status_code == 400


def test_webhook_pages_are_for_managers_only(client, outsider, owner, registered_model):
    sub, _ = webhooks.subscription_create(actor=owner, url="https://example.com/h", model=registered_model)
    client.force_login(outsider)
    assert client.get(f"/webhooks/{sub.pk}/").status_code == 404
    assert "example.com" not in client.get("/webhooks/").content.decode()
