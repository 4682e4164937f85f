"""Governance REST API: status codes and JSON of promotions, protected targets, history, rollback and audit."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from django.db import connection, connections

from governance import services
from governance.models import AuditEvent, PromotionRequest, PromotionState
from registry.models import Alias
from tests.conftest import need_service
from tests.governance.policy_support import protect

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients(team, owner, api_client_for):
    return {name: api_client_for(user) for name, user in {**team, "owner": owner}.items()}


def open_request(clients) -> dict:
    response = clients["engineer"].post("/api/v1/promotions", {
        "model": "churn", "version": 2, "target": "champion", "justification": "Better AUC."}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_promotion_flow_over_the_api(protected, clients):
    body = open_request(clients)
    assert body["state"] == "open" and body["kind"] == "alias" and body["approvals_required"] == 2
    assert body["requested_by"] == "engineer" and body["holder_version_number"] == 1
    pk = body["id"]

    listed = clients["r1"].get("/api/v1/promotions?state=open").json()["results"]
    assert [r["id"] for r in listed] == [pk]
    assert [r["id"] for r in clients["r1"].get("/api/v1/promotions?waiting_for_me=1").json()["results"]] == [pk]
    assert clients["engineer"].get("/api/v1/promotions?waiting_for_me=1").json()["results"] == []

    own = clients["engineer"].post(f"/api/v1/promotions/{pk}/approve", {"comment": "me"}, format="json")
    assert own.status_code == 403 and own.json()["error"]["code"] == "PERMISSION_DENIED"
    first = clients["r1"].post(f"/api/v1/promotions/{pk}/approve", {"comment": "ok"}, format="json")
    assert first.status_code == 200 and first.json()["approvals"] == 1 and first.json()["state"] == "open"
    twice = clients["r1"].post(f"/api/v1/promotions/{pk}/approve", {}, format="json")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "INVALID_STATE"
    second = clients["r2"].post(f"/api/v1/promotions/{pk}/approve", {"comment": "agreed"}, format="json")
    assert second.status_code == 200, second.content
    assert second.json()["state"] == "executed"
    assert [d["reviewer"] for d in second.json()["decisions"]] == ["r1", "r2"]
    assert clients["owner"].get("/api/v1/models/churn/aliases/champion").json()["version"] == 2

    closed = clients["r3"].post(f"/api/v1/promotions/{pk}/reject", {"comment": "late"}, format="json")
    assert closed.status_code == 409


def test_reject_needs_a_comment_and_cancel_is_for_the_requester(protected, clients):
    pk = open_request(clients)["id"]
    bare = clients["r1"].post(f"/api/v1/promotions/{pk}/reject", {}, format="json")
    assert bare.status_code == 400 and "comment" in bare.json()["error"]["message"]
    assert clients["r1"].post(f"/api/v1/promotions/{pk}/cancel", {}, format="json").status_code == 403
    cancelled = clients["engineer"].post(f"/api/v1/promotions/{pk}/cancel", {}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_bad_input_is_refused_clearly(protected, clients, outsider, api_client_for):
    bad_target = clients["engineer"].post("/api/v1/promotions", {
        "model": "churn", "version": 2, "target": "Archived", "kind": "stage", "justification": "x"}, format="json")
    assert bad_target.status_code == 400
    missing = clients["engineer"].post("/api/v1/promotions", {"model": "churn", "version": 99, "target": "champion",
                                                              "justification": "x"}, format="json")
    assert missing.status_code == 404
    assert api_client_for(outsider).get("/api/v1/promotions/1").status_code == 404
    assert clients["engineer"].get("/api/v1/promotions?state=bogus").status_code == 400
    assert clients["engineer"].get("/api/v1/promotions/abc").status_code == 404


def test_protected_targets_api(protected, clients):
    listed = clients["viewer"].get("/api/v1/models/churn/protected-targets").json()
    assert {(t["kind"], t["name"]) for t in listed} == {("alias", "champion"), ("stage", "Production")}
    refused = clients["r1"].post("/api/v1/models/churn/protected-targets", {"name": "prod"}, format="json")
    assert refused.status_code == 403
    created = clients["maint"].post("/api/v1/models/churn/protected-targets", {
        "kind": "alias", "name": "prod", "approvals_required": 1,
        "metric_rules": [{"metric": "auc", "higher_is_better": True, "margin": 0.01}]}, format="json")
    assert created.status_code == 201 and created.json()["metric_rules"][0]["metric"] == "auc"
    removal = clients["maint"].delete("/api/v1/models/churn/protected-targets/alias/prod")
    assert removal.status_code == 202 and removal.json()["state"] == "proposed"  # a second maintainer decides
    approved = clients["owner"].post(f"/api/v1/models/churn/policies/alias:prod/versions/{removal.json()['number']}"
                                     "/approve", {}, format="json")
    assert approved.status_code == 200 and approved.json()["state"] == "active"
    assert clients["maint"].delete("/api/v1/models/churn/protected-targets/alias/prod").status_code == 404


def test_history_and_rollback_api(protected, clients):
    pk = open_request(clients)["id"]
    for reviewer in ("r1", "r2"):
        clients[reviewer].post(f"/api/v1/promotions/{pk}/approve", {}, format="json")
    executed_at = PromotionRequest.objects.get(pk=pk).executed_at
    before = AuditEvent.objects.get(action="promotion.requested").created_at
    past = clients["viewer"].get("/api/v1/models/churn/history", {"at": before.isoformat()}).json()
    assert past["aliases"] == {"champion": 1} and past["stages"] == {"Production": [1]}
    now = clients["viewer"].get("/api/v1/models/churn/history").json()
    assert now["aliases"] == {"champion": 2} and executed_at
    assert clients["viewer"].get("/api/v1/models/churn/history?at=yesterday").status_code == 400

    rollback = clients["maint"].post("/api/v1/models/churn/rollback", {
        "target": "champion", "reason": "Latency spike.", "emergency": True}, format="json")
    assert rollback.status_code == 201, rollback.content
    assert rollback.json()["state"] == "executed" and rollback.json()["version"] == 1
    assert Alias.objects.get(name="champion").version.number == 1


def test_audit_api_filters_exports_and_verifies(protected, clients, staff, api_client_for):
    open_request(clients)
    page = clients["viewer"].get("/api/v1/audit", {"model": "churn", "action": "promotion"}).json()
    assert [e["action"] for e in page["results"]] == ["promotion.requested"]
    assert page["results"][0]["actor"] == "engineer"
    by_actor = clients["viewer"].get("/api/v1/audit", {"actor": "engineer"}).json()["results"]
    assert {e["actor"] for e in by_actor} == {"engineer"}

    exported = clients["viewer"].get("/api/v1/audit", {"model": "churn", "export": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig"))))
    assert rows and [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    as_json = clients["viewer"].get("/api/v1/audit", {"export": "json", "action": "promotion.requested"})
    import json

    assert json.loads(b"".join(as_json.streaming_content))[0]["action"] == "promotion.requested"
    assert clients["viewer"].get("/api/v1/audit", {"export": "xml"}).status_code == 400
    assert clients["viewer"].get("/api/v1/audit", {"since": "not-a-date"}).status_code == 400

    verdict = clients["viewer"].get("/api/v1/audit/verify").json()
    assert verdict["ok"] and verdict["events"] == AuditEvent.objects.count()


def test_outsiders_see_only_their_own_audit_events(protected, outsider, api_client_for):
    client = api_client_for(outsider)
    actions = {e["action"] for e in client.get("/api/v1/audit").json()["results"]}
    assert actions == {"access_token.created"}


# ------------------------------------------------------------------------------------------ concurrency


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_approvals_execute_once_on_postgresql(protected, team, owner):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
            approvals_required=1, required_gates=["metrics"])
    for round_number in range(5):
        version = protected["v2"] if round_number % 2 == 0 else protected["v1"]
        request = services.promotion_request_create(version=version, actor=owner if version == protected["v2"]
                                                    else team["engineer"], kind="alias", target="champion",
                                                    justification="race")
        barrier = threading.Barrier(3)
        outcomes: list[str] = []

        def approve(user, request=request, barrier=barrier, outcomes=outcomes) -> None:
            try:
                barrier.wait()
                services.promotion_approve(request=request, actor=user)
                outcomes.append("executed")
            except Exception as exc:
                outcomes.append(type(exc).__name__)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=approve, args=(team[name],)) for name in ("r1", "r2", "r3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["InvalidState", "InvalidState", "executed"], outcomes
        assert PromotionRequest.objects.get(pk=request.pk).state == PromotionState.EXECUTED
        assert AuditEvent.objects.filter(action="promotion.executed", target_id=str(request.pk)).count() == 1
    from governance import audit

    assert audit.verify().ok


def test_refusals_are_audited(protected, clients):
    pk = open_request(clients)["id"]
    assert clients["engineer"].post(f"/api/v1/promotions/{pk}/approve", {}, format="json").status_code == 403
    refused = AuditEvent.objects.get(action="promotion.refused")
    assert refused.actor_username == "engineer" and refused.data["attempt"] == "approve"
    assert "four-eyes" in refused.data["reason"] and refused.request_id
    bypass = clients["owner"].put("/api/v1/models/churn/aliases/champion", {"version": 2}, format="json")
    assert bypass.status_code == 403
    gate = AuditEvent.objects.get(action="promotion.gate_refused")
    assert (gate.actor_username, gate.model_name, gate.version_number, gate.data) == (
        "owner", "churn", 2, {"kind": "alias", "target": "champion"})
    from governance import audit

    assert audit.verify().ok


@pytest.mark.parametrize("path,body", [
    ("/api/2.0/mlflow/registered-models/alias", {"name": "churn", "alias": "champion", "version": "2"}),
    ("/api/2.0/mlflow/model-versions/transition-stage", {"name": "churn", "version": "2", "stage": "Production",
                                                          "archive_existing_versions": True}),
])
def test_the_mlflow_api_cannot_bypass_the_gate(protected, clients, path, body):
    response = clients["owner"].post(path, body, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "promotion request" in response.json()["message"]
    assert Alias.objects.get(name="champion").version.number == 1
