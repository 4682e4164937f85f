"""Promotion policies over the API and on the page: the published schema, propose → approve by another, the diff,
explain, and bad input answered with the field named (400 in the API's error shape, a form error on the page)."""

from __future__ import annotations

import json

import pytest

from governance.models import AuditEvent, PolicyState, PromotionPolicyVersion

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/churn/policies/alias:champion"
NEW = """# Champion: a reviewer and a second pair of eyes, no Friday-evening moves.
quorum: 2
roles:
  reviewer: 2
gates:
  required: [metrics, model_card]
metric_rules:
  - metric: auc
    direction: higher
    margin: 0.01
  - metric: loss
    direction: lower
    against: floor
    value: 0.6
freeze_windows:
  - name: Friday evening
    timezone: Europe/Paris
    days: [fri]
    start: "17:00"
emergency_rollback:
  allowed: true
  who: [maintainer]
  approvals_after: 1
"""


@pytest.fixture
def clients(team, owner, api_client_for):
    return {name: api_client_for(user) for name, user in {**team, "owner": owner}.items()}


def test_the_schema_is_published_and_is_the_repository_file(clients):
    response = clients["viewer"].get("/api/v1/promotions/policy-schema")
    assert response.status_code == 200
    with open("governance/schemas/promotion_policy.schema.json", encoding="utf-8") as handle:
        assert response.json() == json.load(handle)
    assert set(response.json()["properties"]) == {"quorum", "roles", "gates", "metric_rules", "freeze_windows",
                                                  "emergency_rollback"}


def test_propose_then_another_maintainer_approves(protected, clients):
    proposed = clients["owner"].post(URL, {"source": NEW, "note": "Stricter champion."}, format="json")
    assert proposed.status_code == 201, proposed.content
    body = proposed.json()
    assert body["state"] == "proposed" and body["number"] == 2 and body["source"] == NEW
    assert body["document"]["freeze_windows"][0] == {"name": "Friday evening", "timezone": "Europe/Paris",
                                                     "days": ["fri"], "start": "17:00", "end": "24:00"}
    scopes = {s["scope"]: s for s in clients["viewer"].get("/api/v1/models/churn/policies").json()}
    assert scopes["alias:champion"]["active"]["number"] == 1 and scopes["alias:champion"]["pending"]["number"] == 2
    assert set(scopes) == {"default", "alias:champion", "stage:Production"}
    own = clients["owner"].post(f"{URL}/versions/2/approve", {}, format="json")
    assert own.status_code == 403 and own.json()["error"]["code"] == "PERMISSION_DENIED"
    assert clients["r1"].post(f"{URL}/versions/2/approve", {}, format="json").status_code == 403  # not a maintainer
    approved = clients["maint"].post(f"{URL}/versions/2/approve", {"comment": "Agreed."}, format="json")
    assert approved.status_code == 200 and approved.json()["state"] == "active"
    assert approved.json()["decided_by"] == "maint"
    history = clients["viewer"].get(URL).json()
    assert [(v["number"], v["state"]) for v in history] == [(2, "active"), (1, "superseded")]
    explained = clients["viewer"].get("/api/v1/promotions/explain", {"model": "churn", "version": 2,
                                                                     "target": "champion"}).json()
    assert explained["policy"] == {"source": "target", "scope": "alias:champion", "version": 2,
                                   "sha256": approved.json()["sha256"]}
    assert explained["approvals"]["quorum"] == 2 and explained["emergency_rollback"]["approvals_after"] == 1
    assert {g["key"] for g in explained["gates"]} >= {"model_card", "metric:auc", "metric:loss", "freeze_window"}
    assert explained["blocked"]  # no card and no approvals yet
    assert AuditEvent.objects.filter(action="promotion_policy.approved", actor_username="maint").count() == 1


def test_json_documents_and_removal_go_through_the_same_approval(protected, clients):
    created = clients["maint"].post("/api/v1/models/churn/policies/alias:challenger",
                                    {"document": {"quorum": 1}}, format="json")
    assert created.status_code == 201 and created.json()["state"] == "active"  # a new protection adds review
    removal = clients["maint"].post("/api/v1/models/churn/policies/alias:challenger", {"remove": True},
                                    format="json")
    assert removal.status_code == 201 and removal.json()["state"] == "proposed"
    assert clients["owner"].post("/api/v1/models/churn/policies/alias:challenger/versions/2/approve", {},
                                 format="json").json()["state"] == "active"
    targets = {(t["kind"], t["name"]) for t in clients["viewer"].get(
        "/api/v1/models/churn/protected-targets").json()}
    assert ("alias", "challenger") not in targets


@pytest.mark.parametrize(("payload", "pointer"), [
    ({"source": "quorum: 0\n"}, "/quorum"),
    ({"source": "quorum: 2\ngates: {required: [vibes]}\n"}, "/gates/required/0"),
    ({"document": {"quorum": 2, "metric_rules": [{"metric": "f1", "direction": "higher"}]}},
     "/metric_rules/0/metric"),
    ({"source": "quorum: 12\n"}, "/quorum"),
    ({"source": "quorum: 2\nfreeze_windows: [{days: [mon, tue, wed, thu, fri, sat, sun]}]\n"}, "/freeze_windows"),
    ({"source": "quorum: 2\nroles: {compliance: 1}\n"}, "/roles/compliance"),
    ({"source": "quorum: {\n"}, "/"),
    ({}, "/"),
])
def test_bad_policies_answer_400_naming_the_field(protected, clients, payload, pointer):
    response = clients["owner"].post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETER_VALUE" and error["message"].startswith(pointer)
    assert pointer in error["details"]["fields"]
    assert PromotionPolicyVersion.objects.filter(state=PolicyState.PROPOSED).count() == 0


def test_the_explain_route_checks_access(protected, clients, outsider, api_client_for):
    response = api_client_for(outsider).get("/api/v1/promotions/explain", {"model": "churn", "version": 2,
                                                                           "target": "champion"})
    assert response.status_code == 404


# -------------------------------------------------------------------------------------------------- the page


def test_the_page_edits_shows_the_diff_and_a_second_maintainer_approves(protected, team, owner, client):
    client.force_login(owner)
    page = client.get("/models/churn/protection/")
    assert b'href="/models/churn/policies/alias:champion/"' in page.content
    editor = client.get("/models/churn/policies/alias:champion/")
    assert editor.status_code == 200 and b"quorum: 2" in editor.content
    posted = client.post("/models/churn/policies/alias:champion/", {"source": NEW.replace(
        "reviewer: 2", "reviewer: 2 <script>alert(1)</script>"), "note": ""})
    assert posted.status_code == 400
    assert b"/roles/reviewer: " in posted.content and b"<script>alert(1)" not in posted.content
    bad = client.post("/models/churn/policies/alias:champion/", {"source": "quorum: 9\n"})
    assert bad.status_code == 400 and b"/quorum: A quorum of 9 is more than the 5 people" in bad.content
    assert client.post("/models/churn/policies/alias:champion/", {"source": NEW}).status_code == 302
    body = client.get("/models/churn/policies/alias:champion/").content.decode()
    assert "Waiting for approval" in body and "another maintainer must approve it" in body
    assert '<span class="diff-add">+quorum: 2</span>' not in body  # unchanged lines are context
    assert '<span class="diff-add">+  reviewer: 2</span>' in body and '<span class="diff-del">-roles: {}</span>' in body
    refused = client.post("/models/churn/policies/alias:champion/", {"decision": "approve", "number": 2})
    assert refused.status_code == 403
    client.force_login(team["maint"])
    body = client.get("/models/churn/policies/alias:champion/").content.decode()
    assert "Approve version 2" in body
    assert client.post("/models/churn/policies/alias:champion/", {"decision": "approve", "number": 2,
                                                                   "comment": "Yes."}).status_code == 302
    assert PromotionPolicyVersion.objects.get(kind="alias", target="champion", number=2).state == PolicyState.ACTIVE
    viewer_page = client.get("/models/churn/policies/default/")
    assert viewer_page.status_code == 200
    assert client.get("/models/churn/policies/stage:Archived/").status_code == 404
