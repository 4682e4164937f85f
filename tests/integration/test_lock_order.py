"""Mixed concurrent writes on one model never deadlock: every writer takes its locks in the one order that
registry/locking.py writes down (the model's row, then rows under it, then the audit chain's lock last)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, connections

from deployments import services as deployment_services
from governance.models import AuditEvent
from registry import services
from registry.models import Alias, ModelTag, RetrainRule
from tests.conftest import need_service

pytestmark = pytest.mark.django_db(transaction=True)  # every thread writes on its own connection

PER_THREAD = 25


def _writers(api_for: Callable[[], object]) -> dict[str, Callable[[object, int], object]]:
    """One kind of write per thread, all on model "busy", each sent through the native API."""
    return {
        "endpoints-a": lambda api, i: api.post("/api/v1/endpoints", {
            "name": f"a-{i}", "environment": "prod", "model": "busy"}, format="json"),
        "endpoints-b": lambda api, i: api.post("/api/v1/endpoints", {
            "name": f"b-{i}", "environment": "prod", "model": "busy"}, format="json"),
        "edit": lambda api, i: api.patch("/api/v1/models/busy", {"description": f"edit {i}"}, format="json"),
        "tag": lambda api, i: api.put(f"/api/v1/models/busy/tags/t{i}", {"value": str(i)}, format="json"),
        "rules": lambda api, i: api.post("/api/v1/models/busy/retrain-rules", {
            "trigger": "schedule", "cron": f"{i} 3 * * *"}, format="json"),
        "alias": lambda api, i: api.put(f"/api/v1/models/busy/aliases/al{i % 5}", {"version": 1 + i % 2},
                                        format="json"),
    }


def _run_mixed(writers: dict[str, Callable], clients: dict[str, object]) -> tuple[Counter, list, float]:
    """Run each writer PER_THREAD times in its own thread, all at once; return the status counts, the failures
    (status and body) and the seconds the run took."""
    statuses: Counter = Counter()
    failures: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(writers))

    def work(name: str) -> None:
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                response = writers[name](clients[name], i)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code >= 300:
                        failures.append((name, response.status_code, response.content[:200]))
        except BaseException as exc:  # a crash of the thread itself is a failure too
            with lock:
                failures.append((name, "exception", repr(exc)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(name,), name=name) for name in writers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return statuses, failures, time.perf_counter() - started


@pytest.fixture
def busy_model(owner, staff, make_version, api_client_for):
    """Model "busy" with two versions, environment "prod", and one API client per writer (all the owner's)."""
    model = services.model_create(actor=owner, name="busy")
    make_version(model)
    make_version(model)
    deployment_services.environment_create(actor=staff, name="prod")
    clients = {name: api_client_for(owner) for name in _writers(lambda: None)}
    for api in clients.values():  # warm up: the first request imports the views, which is not what is measured
        assert api.get("/api/v1/models/busy").status_code == 200
    return model, clients


def _assert_everything_landed(model) -> None:
    writes = PER_THREAD
    assert set(model.endpoints.values_list("name", flat=True)) == (
        {f"a-{i}" for i in range(writes)} | {f"b-{i}" for i in range(writes)})
    assert dict(ModelTag.objects.filter(model=model).values_list("key", "value")) == {
        f"t{i}": str(i) for i in range(writes)}
    assert RetrainRule.objects.filter(model=model).count() == writes
    assert Alias.objects.filter(model=model).count() == 5
    model.refresh_from_db()
    assert model.description == f"edit {writes - 1}"
    assert AuditEvent.objects.filter(model_id=model.pk).count() >= 6 * writes


@pytest.mark.postgres
def test_mixed_writes_on_one_model_never_deadlock_on_postgresql(busy_model):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    model, clients = busy_model
    statuses, failures, seconds = _run_mixed(_writers(lambda: None), clients)
    print(f"mixed writes on PostgreSQL: {dict(statuses)} in {seconds:.1f} s")
    assert failures == []
    assert statuses == {200: 3 * PER_THREAD, 201: 3 * PER_THREAD}
    _assert_everything_landed(model)


def test_mixed_writes_on_one_model_on_the_configured_database(busy_model):
    """The same race on whichever database runs the suite (SQLite's writers take turns): every write lands."""
    model, clients = busy_model
    statuses, failures, _ = _run_mixed(_writers(lambda: None), clients)
    assert failures == []
    assert sum(statuses.values()) == 6 * PER_THREAD
    _assert_everything_landed(model)
