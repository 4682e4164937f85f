"""A write that waits too long for a lock held by another transaction fails fast with 503 and Retry-After, in both
APIs' error shapes, never a 500 and never after minutes: PostgreSQL's lock_timeout, SQLite's busy timeout. A lost
database connection answers the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from registry import services
from registry.models import RegisteredModel
from tests.conftest import need_service

pytestmark = pytest.mark.django_db(transaction=True)  # the lock holder works on its own connection


@contextmanager
def model_row_locked(model: RegisteredModel) -> Iterator[None]:
    """Hold a write lock on the model's row, in another thread's transaction, while the block runs."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                RegisteredModel.objects.select_for_update().filter(pk=model.pk).update(description="held")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, name="lock-holder")
    holder.start()
    assert locked.wait(10), "the lock holder never got its lock"
    try:
        yield
    finally:
        release.set()
        holder.join(30)


@pytest.fixture
def contended(owner, make_version, api_client_for):
    """Model "contended" with versions 1 and 2, and its owner's API client."""
    model = services.model_create(actor=owner, name="contended")
    make_version(model)
    make_version(model)
    return model, api_client_for(owner)


def _writes_while_locked(model: RegisteredModel, api) -> tuple[list, float]:
    """Move the alias through both APIs while another transaction holds the model's row; return the responses and
    the slowest one's seconds."""
    responses, slowest = [], 0.0
    # Warm up first: the first request imports the views (seconds under load), which is not what is measured.
    assert api.get("/api/v1/models/contended").status_code == 200
    assert api.get("/api/2.0/mlflow/registered-models/get", {"name": "contended"}).status_code == 200
    with model_row_locked(model):
        for send in (lambda: api.put("/api/v1/models/contended/aliases/champion", {"version": 2}, format="json"),
                     lambda: api.post("/api/2.0/mlflow/registered-models/alias",
                                      {"name": "contended", "alias": "champion", "version": "2"}, format="json")):
            started = time.perf_counter()
            responses.append(send())
            slowest = max(slowest, time.perf_counter() - started)
    return responses, slowest


def _assert_busy(responses: list) -> None:
    native, mlflow = responses
    assert native.status_code == 503, native.content
    assert native.json()["error"]["code"] == "DATABASE_BUSY" and int(native["Retry-After"]) > 0
    assert mlflow.status_code == 503, mlflow.content
    assert mlflow.json()["error_code"] == "TEMPORARILY_UNAVAILABLE" and int(mlflow["Retry-After"]) > 0


@pytest.mark.postgres
def test_postgresql_lock_timeout_turns_a_blocked_write_into_a_fast_503(contended):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    model, api = contended
    with connection.cursor() as cursor:  # every connection starts with the configured timeouts
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == f"{settings.DB_LOCK_TIMEOUT_MS // 1000}s"
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == f"{settings.DB_STATEMENT_TIMEOUT_MS // 1000}s"
        cursor.execute("SET lock_timeout = '300ms'")  # this session only: the test need not wait 10 s
    try:
        responses, slowest = _writes_while_locked(model, api)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    _assert_busy(responses)
    assert slowest < 2.0, slowest
    model.refresh_from_db()
    assert model.aliases.count() == 0  # nothing half-written
    assert api.put("/api/v1/models/contended/aliases/champion", {"version": 2}, format="json").status_code == 200


def test_sqlite_database_is_locked_turns_into_a_fast_503(contended):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own lock; the PostgreSQL test covers lock_timeout")
    model, api = contended
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 300")  # this connection only: the test need not wait 30 s
    responses, slowest = _writes_while_locked(model, api)
    _assert_busy(responses)
    assert slowest < 2.0, slowest
    assert api.put("/api/v1/models/contended/aliases/champion", {"version": 2}, format="json").status_code == 200


def _page_write_while_locked(model: RegisteredModel, client) -> tuple[object, float]:
    """Move the alias through the model page's form while another transaction holds the model's row."""
    assert client.get("/models/contended/").status_code == 200  # warm up: imports and templates
    with model_row_locked(model):
        started = time.perf_counter()
        response = client.post("/models/contended/aliases/", {"alias": "champion", "version": "2"})
        return response, time.perf_counter() - started


def _assert_busy_page(response) -> None:
    assert response.status_code == 503, response.content[:500]
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    assert b"The database is busy" in response.content and b"Traceback" not in response.content


@pytest.mark.postgres
def test_postgresql_busy_database_is_a_readable_503_page(contended, client):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    model, _ = contended
    client.force_login(model.owner)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        response, slowest = _page_write_while_locked(model, client)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    _assert_busy_page(response)
    assert slowest < 2.0, slowest
    assert model.aliases.count() == 0


def test_sqlite_busy_database_is_a_readable_503_page(contended, client):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own lock; the PostgreSQL test covers lock_timeout")
    model, _ = contended
    client.force_login(model.owner)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 300")
    response, slowest = _page_write_while_locked(model, client)
    _assert_busy_page(response)
    assert slowest < 2.0, slowest
    assert model.aliases.count() == 0


@pytest.mark.postgres
def test_a_lost_database_connection_answers_503_in_both_apis(contended):
    """The server ends the request's connection (a restart, a failover, an operator): 503 with Retry-After."""
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    _, api = contended
    sends = (lambda: api.put("/api/v1/models/contended/aliases/champion", {"version": 2}, format="json"),
             lambda: api.post("/api/2.0/mlflow/registered-models/alias",
                              {"name": "contended", "alias": "champion", "version": "2"}, format="json"))
    responses = []
    try:
        for send in sends:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            killer = threading.Thread(target=_terminate, args=(pid,))
            killer.start()
            killer.join(10)
            responses.append(send())
            connection.close()  # Django drops the dead connection at the next request; the test's own use is next
    finally:
        connection.close()
    _assert_busy(responses)
    assert api.put("/api/v1/models/contended/aliases/champion", {"version": 2}, format="json").status_code == 200


def _terminate(pid: int) -> None:
    """End backend `pid` from another connection, as a server restart would."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        connections.close_all()
