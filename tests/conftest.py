"""Shared fixtures: users with roles, models built through the services, API clients, captured events."""

from __future__ import annotations

import io
import os
import socket

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from registry import access, events, services
from registry.artifacts.storage import spool_stream
from registry.models import Role

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Services a run goes without on purpose: CI's first pass is the embedded default (SQLite, no broker), exactly what a
# laptop runs, and sets STRATUM_TEST_WITHOUT="PostgreSQL Redis S3"; its second pass has them all and requires them.
WITHOUT = set(os.environ.get("STRATUM_TEST_WITHOUT", "").split())
MARKED_SERVICES = {"postgres": "PostgreSQL", "redis": "Redis", "s3": "S3"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def need_service(name: str, reason: str) -> None:
    """Skip with a clear reason on a laptop; fail in CI, where every service must be present."""
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests marked for a service this run goes without on purpose (STRATUM_TEST_WITHOUT), in CI too."""
    for marker, service in MARKED_SERVICES.items():
        if item.get_closest_marker(marker) and service in WITHOUT:
            pytest.skip(f"{service}: this run is the embedded default without it (STRATUM_TEST_WITHOUT); "
                        "CI's PostgreSQL pass runs this test")


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path):
    """Give every test its own artifact store (and a fast password hasher: tests create many users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    # Django's own setting_changed receiver resets the storages handler when STORAGES changes.


@pytest.fixture(autouse=True)
def _no_sign_in_failures_carried_over():
    """django-axes counts failed sign-ins in the cache (local memory in tests), which outlives a test: every
    test starts with none, so one test's wrong passwords never lock another out (127.0.0.1 is every client)."""
    from django.conf import settings
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture
def make_user(db):
    """Create a user: make_user("alice", staff=False)."""

    def _make(username: str, *, staff: bool = False, password: str = "pw-correct-horse-42"):
        return get_user_model().objects.create_user(
            username=username, password=password, is_staff=staff, email=f"{username}@example.com"
        )

    return _make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def staff(make_user):
    return make_user("staffer", staff=True)


@pytest.fixture
def grant():
    """grant(model, user, Role.VIEWER) through the service, acting as the model's owner."""

    def _grant(model, user, role: int):
        return access.role_grant(model=model, actor=model.owner, user=user, role=role)

    return _grant


@pytest.fixture
def registered_model(owner):
    return services.model_create(actor=owner, name="churn", description="Predicts **churn**.")


def spooled(data: bytes):
    """Spool bytes as if they were uploaded."""
    return spool_stream(io.BytesIO(data))


@pytest.fixture
def make_version():
    """make_version(model, actor, files={"model.pkl": b"..."}, **fields)."""

    def _make(model, actor=None, files: dict[str, bytes] | None = None, **fields):
        return services.version_create(
            model=model, actor=actor or model.owner,
            files=[(path, spooled(data)) for path, data in (files or {}).items()], **fields,
        )

    return _make


@pytest.fixture
def captured_events():
    """Collect every domain event emitted during the test."""
    seen: list[events.DomainEvent] = []

    def receiver(sender, event, **kwargs):
        seen.append(event)

    events.domain_event.connect(receiver, weak=False)
    yield seen
    events.domain_event.disconnect(receiver)


@pytest.fixture
def api_client_for():
    """api_client_for(user) -> APIClient sending that user's fresh Bearer token."""

    def _client(user):
        _, raw = access.token_create(user=user, actor=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return _client


__all__ = ["IN_CI", "Role", "need_service", "spooled"]
