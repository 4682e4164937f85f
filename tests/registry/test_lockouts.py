"""Sign-in throttling: ten wrong passwords lock the account and the address on every route, for a while, audited."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from governance import audit
from governance.models import AuditEvent
from registry import access

PASSWORD = "pw-correct-horse-42"
LIMIT = 10
MLFLOW_SEARCH = "/api/2.0/mlflow/registered-models/search"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def web_login(client: Client, username: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def admin_login(client: Client, username: str, password: str, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"},
                       **extra)


def api_get(path: str, username: str, password: str, **extra):
    return APIClient().get(path, HTTP_AUTHORIZATION=basic(username, password), **extra)


@pytest.fixture
def alice(make_user):
    return make_user("alice", password=PASSWORD)


def test_settings_throttle_ten_failures_for_fifteen_minutes(settings):
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert "axes.backends.AxesStandaloneBackend" == settings.AUTHENTICATION_BACKENDS[0]


def test_nine_wrong_passwords_do_not_lock_the_web_login(alice):
    client = Client()
    for _ in range(LIMIT - 1):
        assert web_login(client, "alice", "wrong").status_code == 200
    response = web_login(client, "alice", PASSWORD)
    assert response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_ten_wrong_passwords_lock_the_web_login_with_a_readable_page(alice):
    client = Client()
    for _ in range(LIMIT):
        web_login(client, "alice", "wrong")
    response = web_login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    text = response.content.decode()
    assert "Too many failed sign-in attempts" in text and "try again in 15 minutes" in text
    assert 'class="card login-card"' in text
    assert "_auth_user_id" not in client.session


def test_ten_wrong_passwords_lock_the_admin_login(make_user):
    make_user("root", staff=True, password=PASSWORD)
    client = Client()
    for _ in range(LIMIT):
        assert admin_login(client, "root", "wrong").status_code in (200, 429)
    response = admin_login(client, "root", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still not signed in


def test_ten_wrong_passwords_lock_basic_auth_on_the_native_api(alice):
    for attempt in range(LIMIT):
        response = api_get("/api/v1/models", "alice", "wrong")
        assert response.status_code == (401 if attempt < LIMIT - 1 else 429)
    response = api_get("/api/v1/models", "alice", PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    error = response.json()["error"]
    assert error["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Too many failed sign-in attempts" in error["message"]


def test_ten_wrong_passwords_lock_basic_auth_on_the_mlflow_routes(alice):
    for _ in range(LIMIT):
        api_get(MLFLOW_SEARCH, "alice", "wrong")
    response = api_get(MLFLOW_SEARCH, "alice", PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    body = response.json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "Too many failed" in body["message"]


def test_one_lockout_covers_every_route(alice):
    for _ in range(LIMIT):
        api_get(MLFLOW_SEARCH, "alice", "wrong")
    assert web_login(Client(), "alice", PASSWORD).status_code == 429
    assert api_get("/api/v1/models", "alice", PASSWORD).status_code == 429


def test_the_address_is_locked_for_other_accounts_and_the_account_from_other_addresses(alice, make_user):
    make_user("bob", password=PASSWORD)
    for _ in range(LIMIT):
        api_get("/api/v1/models", "alice", "wrong", REMOTE_ADDR="192.0.2.7")
    # bob is fine, except from the address that made the failures
    assert api_get("/api/v1/models", "bob", PASSWORD, REMOTE_ADDR="192.0.2.7").status_code == 429
    assert api_get("/api/v1/models", "bob", PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 200
    # alice is locked whichever address she comes from
    assert api_get("/api/v1/models", "alice", PASSWORD, REMOTE_ADDR="192.0.2.8").status_code == 429


def test_many_names_from_one_address_lock_the_address(make_user):
    make_user("carol", password=PASSWORD)
    for n in range(LIMIT):
        web_login(Client(), f"guess{n}", "wrong", REMOTE_ADDR="198.51.100.4")
    assert web_login(Client(), "carol", PASSWORD, REMOTE_ADDR="198.51.100.4").status_code == 429
    assert web_login(Client(), "carol", PASSWORD, REMOTE_ADDR="198.51.100.5").status_code == 302


def test_the_lockout_expires(alice):
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=1)):
        for _ in range(LIMIT):
            api_get("/api/v1/models", "alice", "wrong")
        locked = api_get("/api/v1/models", "alice", PASSWORD)
        assert locked.status_code == 429 and locked["Retry-After"] == "1"
        time.sleep(1.5)
        assert api_get("/api/v1/models", "alice", PASSWORD).status_code == 200


def test_tries_while_locked_do_not_extend_the_lockout(alice):
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=2)):
        for _ in range(LIMIT):
            api_get("/api/v1/models", "alice", "wrong")
        time.sleep(1.2)
        assert api_get("/api/v1/models", "alice", "wrong").status_code == 429
        time.sleep(1.2)
        assert api_get("/api/v1/models", "alice", PASSWORD).status_code == 200


def test_tokens_keep_working_for_a_locked_out_account(alice):
    _, raw = access.token_create(user=alice, actor=alice, name="ci")
    for _ in range(LIMIT):
        api_get("/api/v1/models", "alice", "wrong")
    assert api_get("/api/v1/models", "alice", PASSWORD).status_code == 429
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bearer.get("/api/v1/models").status_code == 200
    assert bearer.get(MLFLOW_SEARCH).status_code == 200
    assert api_get("/api/v1/models", "alice", raw).status_code == 200  # a token as the basic-auth password


def test_a_lockout_is_audited_once_and_the_chain_verifies(alice):
    for _ in range(LIMIT + 3):
        api_get("/api/v1/models", "alice", "wrong", REMOTE_ADDR="203.0.113.9")
    web_login(Client(), "alice", PASSWORD, REMOTE_ADDR="203.0.113.9")
    events = list(AuditEvent.objects.filter(action="account.locked_out"))
    assert len(events) == 1
    event = events[0]
    assert event.target_type == "auth.user" and event.target_id == str(alice.pk) and event.target_label == "alice"
    assert event.actor_username == "system"
    assert event.data["username"] == "alice" and event.data["ip_address"] == "203.0.113.9"
    assert event.data["failures"] == LIMIT and event.data["path"] == "/api/v1/models"
    assert event.client_ip == "203.0.113.9"
    assert audit.verify(check_signatures=False).ok


def test_a_lockout_of_an_unknown_name_is_audited_without_an_account(db):
    for _ in range(LIMIT):
        web_login(Client(), "nobody-here", "wrong")
    event = AuditEvent.objects.get(action="account.locked_out")
    assert event.target_id == "" and event.target_label == "nobody-here"


def test_an_overlong_username_is_counted_not_crashed(db):
    name = "x" * 5000
    for attempt in range(LIMIT + 1):
        response = api_get("/api/v1/models", name, "wrong", REMOTE_ADDR=f"192.0.2.{attempt + 20}")
    assert response.status_code == 429  # the same (bounded) name from eleven addresses: locked by account
