"""Version numbers under concurrency: many writers on one model get 1..N, no error, no duplicate, no gap."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from registry import services
from registry.models import ModelVersion
from tests.conftest import need_service

pytestmark = pytest.mark.django_db(transaction=True)


def _hammer(model, actor, threads: int, per_thread: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                services.version_create(model=model, actor=actor, metrics={"auc": 0.5})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return errors


@pytest.mark.postgres
def test_sixteen_clients_hundred_versions_each_on_postgresql(owner):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    model = services.model_create(actor=owner, name="contended")
    errors = _hammer(model, owner, threads=16, per_thread=100)
    assert errors == []
    numbers = sorted(ModelVersion.objects.filter(model=model).values_list("number", flat=True))
    assert numbers == list(range(1, 1601))
    model.refresh_from_db()
    assert model.last_version_number == 1600


def test_concurrent_creates_on_the_configured_database_never_error(owner):
    model = services.model_create(actor=owner, name="contended-small")
    errors = _hammer(model, owner, threads=8, per_thread=15)
    assert errors == []
    numbers = sorted(ModelVersion.objects.filter(model=model).values_list("number", flat=True))
    assert numbers == list(range(1, 121))
