"""Governance pages: what a reviewer, an engineer and an auditor see, and what they may do."""

from __future__ import annotations

import pytest
from django.test import Client

from governance import services
from governance.models import AuditEvent, PromotionRequest, PromotionState
from registry.models import Alias

pytestmark = pytest.mark.django_db


def login(client, user) -> Client:
    client.force_login(user)
    return client


def open_request(protected, team):
    return services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                             target="champion", justification="Better AUC on fresh data.")


def test_inbox_shows_what_waits_for_the_reviewer(protected, team, client):
    request = open_request(protected, team)
    body = login(client, team["r1"]).get("/reviews/").content.decode()
    assert f"#{request.pk}" in body and "Waiting for me" in body and "churn" in body
    body = login(Client(), team["engineer"]).get("/reviews/").content.decode()
    assert "Nothing is waiting for you." in body and f"#{request.pk}" in body  # under "My requests"


def test_request_page_compares_candidate_and_holder(protected, team, client):
    request = open_request(protected, team)
    response = login(client, team["r1"]).get(f"/promotions/{request.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Better AUC on fresh data." in body
    assert "+0.05" in body  # auc 0.85 vs 0.80
    assert "vendor/plotly.min.js" in body and "data-plotly-chart" in body
    assert "events-2026" in body and "b" * 40 in body  # datasets and commit
    assert "Not available" in body and "Approve" in body


def test_requester_sees_why_they_cannot_approve(protected, team, client):
    request = open_request(protected, team)
    body = login(client, team["engineer"]).get(f"/promotions/{request.pk}/").content.decode()
    assert "four-eyes" in body and 'value="approve"' not in body


def test_htmx_approve_returns_the_outcome_at_once(protected, team, client):
    request = open_request(protected, team)
    c1 = login(client, team["r1"])
    first = c1.post(f"/promotions/{request.pk}/", {"decision": "approve", "comment": "ok"}, HTTP_HX_REQUEST="true")
    assert first.status_code == 200 and "Approval recorded (1 of 2)" in first.content.decode()
    again = c1.post(f"/promotions/{request.pk}/", {"decision": "approve"}, HTTP_HX_REQUEST="true")
    assert again.status_code == 400 and "decides once" in again.content.decode()
    second = login(Client(), team["r2"]).post(f"/promotions/{request.pk}/", {"decision": "approve"},
                                              HTTP_HX_REQUEST="true")
    assert "Executed: version 2 now holds @champion." in second.content.decode()
    assert Alias.objects.get(name="champion").version.number == 2


def test_reject_without_comment_is_explained(protected, team, client):
    request = open_request(protected, team)
    response = login(client, team["r1"]).post(f"/promotions/{request.pk}/", {"decision": "reject"},
                                              HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "comment is required" in response.content.decode()
    assert PromotionRequest.objects.get(pk=request.pk).state == PromotionState.OPEN


def test_forged_post_without_csrf_token_is_refused(protected, team):
    request = open_request(protected, team)
    client = Client(enforce_csrf_checks=True)
    client.force_login(team["r1"])
    response = client.post(f"/promotions/{request.pk}/", {"decision": "approve"})
    assert response.status_code == 403
    assert PromotionRequest.objects.get(pk=request.pk).decisions.count() == 0


def test_engineer_opens_a_request_from_the_version_page(protected, team, client):
    c = login(client, team["engineer"])
    version_page = c.get("/models/churn/versions/2/").content.decode()
    assert "/models/churn/versions/2/promote/" in version_page
    form = c.get("/models/churn/versions/2/promote/").content.decode()
    assert "@champion (2 approval(s))" in form
    response = c.post("/models/churn/versions/2/promote/", {"target": "alias:champion", "justification": "Ship."})
    request = PromotionRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/promotions/{request.pk}/"
    again = c.post("/models/churn/versions/2/promote/", {"target": "alias:champion", "justification": "Again."})
    assert again.status_code == 400 and "already asks" in again.content.decode()


def test_audit_page_filters_links_exports_and_verifies(protected, team, client):
    request = open_request(protected, team)
    c = login(client, team["viewer"])
    body = c.get("/audit/", {"model": "churn", "action": "promotion.requested"}).content.decode()
    assert "Verified." in body and "Audit chain intact" in body
    assert f'href="/promotions/{request.pk}/"' in body and body.count('class="audit-row"') == 1
    export = c.get("/audit/", {"model": "churn", "export": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    assert b"promotion.requested" in b"".join(export.streaming_content)
    assert c.get("/audit/", {"since": "nope"}).status_code == 400


def test_audit_page_shows_a_broken_chain(protected, team, client, staff):
    from tests.governance.test_audit import dba

    with dba() as cursor:
        cursor.execute("UPDATE governance_auditevent SET action = 'forged' WHERE seq = 3")
    body = login(client, staff).get("/audit/").content.decode()
    assert "Tampering detected." in body and "BROKEN at sequence #3" in body


def test_history_page_and_rollback(protected, team, client):
    request = open_request(protected, team)
    for name in ("r1", "r2"):
        services.promotion_approve(request=request, actor=team[name])
    c = login(client, team["maint"])
    body = c.get("/models/churn/history/").content.decode()
    assert "@champion → version 2 (was 1)" in body
    then = AuditEvent.objects.get(action="promotion.requested").created_at.isoformat()
    past = c.get("/models/churn/history/", {"at": then}).content.decode()
    assert "Held then" in past
    response = c.post("/models/churn/history/", {"target": "alias:champion", "reason": "Outage", "emergency": "on"})
    assert response.status_code == 302
    assert Alias.objects.get(name="champion").version.number == 1


def test_protection_page_for_maintainers_only(protected, team, client):
    c = login(client, team["maint"])
    assert "Protect a target" in c.get("/models/churn/protection/").content.decode()
    response = c.post("/models/churn/protection/", {"kind": "alias", "name": "prod", "approvals_required": 1,
                                                    "metric_rules": "auc, higher, 0.01"})
    assert response.status_code == 302
    assert "auc ↑" in c.get("/models/churn/protection/").content.decode()
    bad = c.post("/models/churn/protection/", {"kind": "alias", "name": "x", "approvals_required": 1,
                                               "metric_rules": "auc, sideways"})
    assert bad.status_code == 400
    viewer = login(Client(), team["viewer"])
    assert "Protect a target" not in viewer.get("/models/churn/protection/").content.decode()
    assert viewer.post("/models/churn/protection/", {"kind": "alias", "name": "y"}).status_code == 403
