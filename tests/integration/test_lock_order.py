"""Mixed concurrent writes on one model never deadlock: every writer takes its locks in the one order that
registry/locking.py writes down (the model's row, then rows under it, then the audit chain's lock last)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection, connections, transaction

from deployments import services as deployment_services
from governance import audit
from governance import services as governance_services
from governance.cards import services as cards
from governance.models import AuditEvent
from governance.policy import services as policy_services
from registry import access, services
from registry.lineage import features, offline
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, NodeKind
from registry.models import Alias, ModelTag, RegisteredModel, RetrainRule, Role
from registry.pipeline import signing, triggers
from registry.pipeline.scan import services as scan_services
from registry.tracking import experiments, runs
from registry.webhooks import services as webhooks
from tests.conftest import need_service, spooled
from tests.deployments.conftest import SIGNATURE, iris_onnx

pytestmark = pytest.mark.django_db(transaction=True)  # every thread writes on its own connection

PER_THREAD = 25


def _writers() -> dict[str, Callable[[object, int], object]]:
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
    clients = {name: api_client_for(owner) for name in _writers()}
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
    statuses, failures, seconds = _run_mixed(_writers(), clients)
    print(f"mixed writes on PostgreSQL: {dict(statuses)} in {seconds:.1f} s")
    assert failures == []
    assert statuses == {200: 3 * PER_THREAD, 201: 3 * PER_THREAD}
    _assert_everything_landed(model)


def test_mixed_writes_on_one_model_on_the_configured_database(busy_model):
    """The same race on whichever database runs the suite (SQLite's writers take turns): every write lands."""
    model, clients = busy_model
    statuses, failures, _ = _run_mixed(_writers(), clients)
    assert failures == []
    assert sum(statuses.values()) == 6 * PER_THREAD
    _assert_everything_landed(model)


# ------------------------------------------------------------------------------ every audited write, recorded


@dataclass
class LockTrace:
    """The locking statements one write sent, in order, and what they broke of the lock order."""

    statements: list[tuple[str, tuple]] = field(default_factory=list)

    def __call__(self, execute, sql, params, many, context):
        if "pg_advisory_xact_lock" in sql or LOCKING.search(sql):
            self.statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    def problems(self, *, audited_models: set[int]) -> list[str]:
        """Check the order of registry/locking.py: the models `audited_models` (those the write's events name)
        locked before the audit chain's lock; no plain FOR UPDATE; after the chain's lock, no other advisory lock,
        and row locks only under a model already locked."""
        found: list[str] = []
        chain_held, advisory, models_before_chain, models = False, set(), set(), set()
        for sql, params in self.statements:
            if "pg_advisory_xact_lock" in sql:
                key = params[0]
                if chain_held and key not in advisory:
                    found.append(f"advisory lock {key:#x} taken after the audit chain's")
                advisory.add(key)
                chain_held = chain_held or key == audit.ADVISORY_LOCK_KEY
                continue
            table = TABLE.search(sql).group(1)
            if "FOR UPDATE" in sql and "NO KEY" not in sql and not models:  # update_or_create's, under a model
                found.append(f"FOR UPDATE (not NO KEY) on {table} under no locked model: FK checks wait on it")
            if table == "registry_registeredmodel":
                if chain_held and params[0] not in models:
                    found.append(f"model {params[0]} locked after the audit chain's lock")
                models.add(params[0])
                if not chain_held:
                    models_before_chain.add(params[0])
            elif chain_held and not models:
                found.append(f"{table} row locked after the audit chain's lock, under no locked model")
        for model_id in sorted(audited_models - models_before_chain):
            found.append(f"an event names model {model_id}, which was not locked before the audit chain's lock")
        return found


LOCKING = re.compile(r"\bFOR (NO KEY )?(UPDATE|SHARE)\b")
TABLE = re.compile(r'\bFROM "(\w+)"')


def traced(call: Callable[[], object]) -> tuple[object, list[str]]:
    """Run one write in its own transaction, recording the locks it takes until it commits; return its result and
    the lock-order problems (models created by the write itself excepted: nobody else can see them yet)."""
    existing = set(RegisteredModel.objects.values_list("pk", flat=True))
    before = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    trace = LockTrace()
    with transaction.atomic():  # what runs once it commits (jobs, deliveries) is other transactions: not traced
        with connection.execute_wrapper(trace):
            result = call()
    audited = set(AuditEvent.objects.filter(seq__gt=before, model_id__isnull=False)
                  .values_list("model_id", flat=True)) & existing
    assert AuditEvent.objects.filter(seq__gt=before).exists(), "the write recorded no event"

    return result, trace.problems(audited_models=audited)


@pytest.mark.postgres
def test_every_audited_write_takes_its_locks_in_the_one_order(owner, staff, make_user):
    """Registry, access, pipeline, lineage, webhooks, tracking, governance and deployment writes, each recorded: the
    model first (FOR NO KEY UPDATE), the audit chain's lock last, nothing new locked after it."""
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    problems: dict[str, list[str]] = {}

    def run(name: str, call: Callable[[], object]) -> object:
        result, found = traced(call)
        if found:
            problems[name] = found
        return result

    reviewer, colleague = make_user("reviewer"), make_user("colleague")
    model = run("model_create", lambda: services.model_create(actor=owner, name="ordered"))
    successor = run("model_create", lambda: services.model_create(actor=owner, name="successor"))
    run("model_update", lambda: services.model_update(model=model, actor=owner, description="edited"))
    model = run("model_rename", lambda: services.model_rename(model=model, actor=owner, new_name="ordered-2"))
    run("model_tag_set", lambda: services.model_tag_set(model=model, actor=owner, key="team", value="a"))
    run("model_tag_delete", lambda: services.model_tag_delete(model=model, actor=owner, key="team"))
    run("role_grant", lambda: access.role_grant(model=model, actor=owner, role=Role.REVIEWER, user=reviewer))
    run("role_grant", lambda: access.role_grant(model=model, actor=owner, role=Role.VIEWER, user=colleague))
    run("role_revoke", lambda: access.role_revoke(model=model, actor=owner, user=colleague))
    v1 = run("version_create", lambda: services.version_create(
        model=model, actor=owner, code_repository="https://git.example/churn", code_commit="a" * 40,
        signature=SIGNATURE, files=[("model.onnx", spooled(iris_onnx("good"))), ("MLmodel", spooled(b"x: 1\n"))]))
    v2 = run("version_create", lambda: services.version_create(model=model, actor=owner, metrics={"auc": 0.9}))
    run("artifact_add", lambda: services.artifact_add(version=v2, actor=owner, path="notes.txt",
                                                      upload=spooled(b"notes")))
    run("artifact_delete", lambda: services.artifact_delete(version=v2, actor=owner, path="notes.txt"))
    run("version_update", lambda: services.version_update(version=v2, actor=owner, code_commit="b" * 40))
    run("version_tag_set", lambda: services.version_tag_set(version=v2, actor=owner, key="k", value="v"))
    run("version_tag_delete", lambda: services.version_tag_delete(version=v2, actor=owner, key="k"))
    run("version_scan_request", lambda: scan_services.version_scan_request(version=v1, actor=owner))
    job = signing.sign_enqueue(version=v1, actor=owner)
    run("version_sign_run", lambda: signing.version_sign_run(job))
    run("signature_verify", lambda: signing.signature_verify(version=v1, actor=owner))
    run("alias_set", lambda: services.alias_set(model=model, alias="challenger", version=v2, actor=owner))
    run("alias_delete", lambda: services.alias_delete(model=model, alias="challenger", actor=owner))
    run("version_transition_stage", lambda: services.version_transition_stage(version=v2, actor=owner,
                                                                              stage="Staging"))
    run("version_deprecate", lambda: services.version_deprecate(version=v2, actor=owner, reason="old"))
    rule = run("retrain_rule_create", lambda: triggers.retrain_rule_create(model=model, actor=owner,
                                                                           trigger="schedule", cron="0 3 * * *"))
    run("retrain_fire", lambda: triggers.retrain_fire(rule=rule, reason="due", bump="patch"))
    run("retrain_rule_delete", lambda: triggers.retrain_rule_delete(rule=rule, actor=owner))
    run("subscription_create", lambda: webhooks.subscription_create(actor=owner, url="https://hooks.example/x",
                                                                    event_types=["none.matches"], model=model))
    dataset = run("node_create", lambda: lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="events",
                                                             version="2026")).obj
    version_node, _ = lineage.version_node_ensure(v2)  # made when its commit was recorded
    run("edge_create", lambda: lineage.edge_create(actor=owner, upstream=dataset, downstream=version_node,
                                                   kind=EdgeKind.TRAINED_ON))
    fs = [{"name": "ordered-features", "version": "1", "derived_from": ["events@2026"]}]
    run("version_create", lambda: services.version_create(model=model, actor=owner, feature_sets=fs))
    run("feature_sets_declare", lambda: features.feature_sets_declare(
        actor=owner, version=v2, feature_sets=features.feature_sets_parse(fs)))
    run("prediction_batch_register", lambda: offline.prediction_batch_register(
        actor=owner, version=v2, uri="s3://scores/ordered.parquet", row_count=3))
    experiment = run("experiment_create", lambda: experiments.experiment_create(actor=owner, name="exp"))
    mlrun = run("run_create", lambda: runs.run_create(actor=owner, experiment=experiment))
    run("run_update", lambda: runs.run_update(actor=owner, run=mlrun, status="FINISHED"))
    card = run("card_create", lambda: cards.card_create(version=v1, actor=owner))
    run("review_policy_set", lambda: governance_services.review_policy_set(
        model=model, actor=owner, card_approvers="both", card_min_completeness=1))
    run("card_submit", lambda: cards.card_submit(card=card, actor=owner))
    run("protected_target_set", lambda: governance_services.protected_target_set(
        model=model, actor=owner, kind="alias", name="champion", approvals_required=1,
        required_gates=["metrics"]))  # v1 has no files to scan or sign: the approval executes the move
    proposal = run("policy_propose", lambda: policy_services.policy_propose(
        model=model, actor=owner, scope="alias:champion", source="quorum: 1\nroles: {reviewer: 1}\n"
                                                                "gates: {required: [metrics]}\n"))
    run("policy_approve", lambda: policy_services.policy_approve(version=proposal, actor=staff))
    request = run("promotion_request_create", lambda: governance_services.promotion_request_create(
        version=v1, actor=owner, kind="alias", target="champion", justification="better"))
    run("promotion_approve", lambda: governance_services.promotion_approve(request=request, actor=reviewer))
    environment = run("environment_create", lambda: deployment_services.environment_create(
        actor=staff, name="live", follow_alias="live", follow_stage="Production"))
    endpoint = run("endpoint_create", lambda: deployment_services.endpoint_create(
        actor=owner, name="ordered-live", environment=environment, model=model))
    run("deployment_start", lambda: deployment_services.deployment_start(
        actor=owner, endpoint=endpoint, strategy="direct", version=v1.number))
    run("model_deprecate", lambda: services.model_deprecate(model=model, actor=owner, reason="r",
                                                            successor=successor))
    run("model_undeprecate", lambda: services.model_undeprecate(model=model, actor=owner))
    run("version_delete", lambda: services.version_delete(version=v2, actor=owner))
    run("model_delete", lambda: services.model_delete(model=successor, actor=owner))
    assert problems == {}, "\n".join(f"{name}: {found}" for name, found in problems.items())
