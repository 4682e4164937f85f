"""Promotion policy as code: roles, four-eyes policy changes, explain matching execution, the data migration, and
bad input refused with the field named."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance import selectors as governance_selectors
from governance import services
from governance.models import (
    AuditEvent,
    PolicyState,
    PromotionPolicyVersion,
    PromotionRequest,
    PromotionState,
    ProtectedTarget,
)
from governance.policy import evaluation, selectors
from governance.policy import services as policy_services
from governance.policy.schema import PolicyInvalid, from_protection
from registry.errors import Forbidden, InvalidState
from registry.models import Alias, Role

pytestmark = pytest.mark.django_db

WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def officer(make_user, registered_model, grant):
    """A compliance officer who can see the model (no reviewer role)."""
    user = make_user("officer")
    user.groups.add(Group.objects.get_or_create(name="compliance")[0])
    grant(registered_model, user, Role.VIEWER)
    return user


def set_policy(protected, team, owner, document, scope="alias:champion"):
    """Propose `document` as the owner and have the maintainer approve it: the policy in force."""
    version = policy_services.policy_propose(model=protected["model"], actor=owner, scope=scope, source=document)
    if version.state == PolicyState.PROPOSED:
        version = policy_services.policy_approve(version=version, actor=team["maint"])
    assert version.state == PolicyState.ACTIVE
    return version


def request_champion(protected, team, version=None):
    return services.promotion_request_create(version=version or protected["v2"], actor=team["engineer"],
                                             kind="alias", target="champion", justification="Better AUC.")


def champion() -> int:
    return Alias.objects.select_related("version").get(name="champion").version.number


def explain(protected, version=None) -> dict:
    return selectors.explain(model=protected["model"], version=version or protected["v2"], kind="alias",
                             target="champion")


# ------------------------------------------------------------------------------------------------- roles


def test_a_compliance_approval_is_required_two_reviewers_are_not_enough(protected, team, owner, officer, client):
    set_policy(protected, team, owner, "quorum: 2\nroles: {reviewer: 1, compliance: 1}\ngates:\n  required: "
                                       "[metrics]\n")
    request = request_champion(protected, team)
    assert request.approvals_required == 2
    client.force_login(officer)
    services.promotion_approve(request=request, actor=team["r1"])
    request = services.promotion_approve(request=request, actor=team["r2"])
    assert request.state == PromotionState.OPEN and champion() == 1  # two reviewers: quorum, but no compliance
    answer = explain(protected)
    assert answer["blocked"] and answer["approvals"]["count"] == 2
    assert {r["role"]: (r["required"], r["have"]) for r in answer["approvals"]["roles"]} == {
        "compliance": (1, 0), "reviewer": (1, 1)}
    assert "1 more from a compliance officer" in answer["blockers"][0]["reason"]
    with pytest.raises(InvalidState):
        services.promotion_execute(request=request, actor=team["engineer"])
    assert list(governance_selectors.promotion_inbox(actor=officer)) == [request]  # waiting for the officer
    page = client.get(f"/promotions/{request.pk}/")
    assert "1 from a compliance officer (0 so far)" in page.content.decode()
    request = services.promotion_approve(request=request, actor=officer)  # a compliance officer may now approve
    assert request.state == PromotionState.EXECUTED and champion() == 2


def test_a_compliance_officer_may_not_approve_where_the_policy_does_not_ask_for_one(protected, team, officer):
    request = request_champion(protected, team)
    assert not governance_selectors.promotion_inbox(actor=officer).exists()
    with pytest.raises(Forbidden, match="Only reviewers"):
        services.promotion_approve(request=request, actor=officer)


# ------------------------------------------------------------------------------------ four eyes on policies


def test_a_policy_edit_by_its_author_alone_does_not_take_effect(protected, team, owner):
    start = AuditEvent.objects.count()
    proposed = policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                              source="quorum: 1\ngates: {required: [metrics]}\n")
    assert proposed.state == PolicyState.PROPOSED and proposed.number == 2  # version 1 came from the settings
    with pytest.raises(Forbidden, match="another maintainer"):
        policy_services.policy_approve(version=proposed, actor=owner)
    # The previous version (quorum 2) stays in force: one approval does not move the alias.
    request = services.promotion_approve(request=request_champion(protected, team), actor=team["r1"])
    assert request.state == PromotionState.OPEN and champion() == 1
    assert ProtectedTarget.objects.get(kind="alias", name="champion").approvals_required == 2
    with pytest.raises(InvalidState, match="waiting for approval"):
        policy_services.policy_propose(model=protected["model"], actor=team["maint"], scope="alias:champion",
                                       source="quorum: 3\n")
    approved = policy_services.policy_approve(version=proposed, actor=team["maint"], comment="Fine.")
    assert approved.state == PolicyState.ACTIVE
    versions = dict(PromotionPolicyVersion.objects.filter(kind="alias", target="champion")
                    .values_list("number", "state"))
    assert versions == {1: PolicyState.SUPERSEDED, 2: PolicyState.ACTIVE}
    assert ProtectedTarget.objects.get(kind="alias", name="champion").approvals_required == 1
    request = services.promotion_approve(request=PromotionRequest.objects.get(pk=request.pk), actor=team["r2"])
    assert request.state == PromotionState.EXECUTED  # the new quorum of one is met
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", "actor_username"))[start:]
    assert ("promotion_policy.proposed", "owner") in actions and ("promotion_policy.approved", "maint") in actions
    event = AuditEvent.objects.get(action="promotion_policy.approved")
    assert event.data["sha256"] == approved.sha256 and event.model_name == "churn"


def test_a_proposed_change_is_emailed_to_maintainers_and_compliance_and_the_decision_to_its_author(
        protected, team, owner, officer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        proposed = policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                                  source="quorum: 1\n", note="One reviewer is enough here.")
    # The maintainer may approve; the officer answers for it; the author and plain reviewers are not asked.
    assert sorted(m.to[0] for m in mail.outbox) == ["maint@example.com", "officer@example.com"]
    assert all("/models/churn/policies/alias:champion/" in m.body and "One reviewer is enough" in m.body
               and "version 2 of the promotion policy of churn (@champion)" in m.body for m in mail.outbox)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        policy_services.policy_approve(version=proposed, actor=team["maint"], comment="Agreed.")
    assert [(m.to, "approved: it is in force now" in m.body, "Agreed." in m.body) for m in mail.outbox] == [
        (["owner@example.com"], True, True)]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                               source="quorum: 2\n")
        policy_services.policy_reject(version=again, actor=team["maint"], comment="Keep one.")
    rejected = [m for m in mail.outbox if m.to == ["owner@example.com"]]
    assert len(rejected) == 1 and "rejected" in rejected[0].subject and "Keep one." in rejected[0].body


def test_versions_are_immutable_and_hashed(protected, team, owner):
    first = set_policy(protected, team, owner, {"quorum": 2, "gates": {"required": ["metrics"]}})
    again = set_policy(protected, team, owner, "quorum: 2\ngates:\n  required: [metrics]\nroles: {reviewer: 2}\n")
    first.refresh_from_db()
    assert first.state == PolicyState.SUPERSEDED and first.document["roles"] == {}
    assert first.sha256 != again.sha256 and len(again.sha256) == 64
    with pytest.raises(Exception, match="in force already"):
        policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                       source=again.source)


def test_the_author_withdraws_another_maintainer_rejects_with_a_reason(protected, team, owner):
    proposed = policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                              source="quorum: 1\n")
    with pytest.raises(Exception, match="Say why"):
        policy_services.policy_reject(version=proposed, actor=team["maint"])
    assert policy_services.policy_reject(version=proposed, actor=team["maint"],
                                         comment="Too loose.").state == PolicyState.REJECTED
    again = policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion",
                                           source="quorum: 1\n")
    assert policy_services.policy_reject(version=again, actor=owner).state == PolicyState.WITHDRAWN
    with pytest.raises(Forbidden):
        policy_services.policy_propose(model=protected["model"], actor=team["r1"], scope="alias:champion",
                                       source="quorum: 1\n")


def test_the_model_default_applies_to_a_target_without_its_own_policy(protected, team, owner):
    PromotionPolicyVersion.objects.filter(kind="alias", target="champion").delete()  # settings only, as before
    set_policy(protected, team, owner, "quorum: 3\ngates: {required: [metrics]}\n", scope="default")
    policy = evaluation.effective_policy(protected["model"], "alias", "champion")
    assert policy.source == "default" and policy.document["quorum"] == 3


# ------------------------------------------------------------------------- explain matches what execution does


def _today_window() -> dict:
    now = timezone.now()
    return {"name": "Release freeze", "timezone": "UTC", "from": (now - timedelta(days=1)).date().isoformat(),
            "until": (now + timedelta(days=1)).date().isoformat()}


def _other_day_window() -> dict:
    today = WEEK[timezone.now().weekday()]
    return {"name": "Not today", "timezone": "UTC", "days": [d for d in WEEK if d != today][:2]}


# (name, policy document, approvers, expected blockers after the approvals; empty: the move executes)
SCENARIOS = [
    ("scan required, no files", {"quorum": 1, "gates": {"required": ["artifact_scan"]}}, ["r1"], {"artifact_scan"}),
    ("signature required, unsigned", {"quorum": 1, "gates": {"required": ["signature"]}}, ["r1"], {"signature"}),
    ("card required, no card", {"quorum": 1, "gates": {"required": ["model_card"]}}, ["r1"], {"model_card"}),
    ("every gate advisory", {"quorum": 1, "gates": {"required": []}}, ["r1"], set()),
    ("holder rule holds", {"quorum": 1, "gates": {"required": ["metrics"]}, "metric_rules": [
        {"metric": "auc", "direction": "higher", "margin": 0}]}, ["r1"], set()),
    ("holder rule fails", {"quorum": 1, "gates": {"required": ["metrics"]}, "metric_rules": [
        {"metric": "loss", "direction": "higher", "against": "holder", "margin": 0.05}]}, ["r1"], {"metric:loss"}),
    ("holder rule fails, advisory", {"quorum": 1, "gates": {"required": []}, "metric_rules": [
        {"metric": "loss", "direction": "higher", "margin": 0.05}]}, ["r1"], set()),
    ("floor holds", {"quorum": 1, "gates": {"required": ["metrics"]}, "metric_rules": [
        {"metric": "auc", "direction": "higher", "against": "floor", "value": 0.8}]}, ["r1"], set()),
    ("floor fails", {"quorum": 1, "gates": {"required": ["metrics"]}, "metric_rules": [
        {"metric": "auc", "direction": "higher", "against": "floor", "value": 0.9}]}, ["r1"], {"metric:auc"}),
    ("ceiling fails", {"quorum": 1, "gates": {"required": ["metrics"]}, "metric_rules": [
        {"metric": "loss", "direction": "lower", "against": "floor", "value": 0.3}]}, ["r1"], {"metric:loss"}),
    ("frozen now", {"quorum": 1, "gates": {"required": []}, "freeze_windows": [_today_window()]}, ["r1"],
     {"freeze_window"}),
    ("frozen another day", {"quorum": 1, "gates": {"required": []}, "freeze_windows": [_other_day_window()]},
     ["r1"], set()),
    ("quorum not met", {"quorum": 3, "gates": {"required": []}}, ["r1", "r2"], {"approvals"}),
    ("quorum met", {"quorum": 3, "gates": {"required": []}}, ["r1", "r2", "r3"], set()),
    ("compliance role not met", {"quorum": 2, "roles": {"compliance": 1}, "gates": {"required": []}},
     ["r1", "r2"], {"approvals"}),
    ("compliance role met", {"quorum": 2, "roles": {"compliance": 1}, "gates": {"required": []}},
     ["r1", "officer"], set()),
]


MOVES = [("alias", "champion"), ("stage", "Production")]


def _holds(protected, kind: str, target: str) -> bool:
    """True when the candidate (v2) holds the target now."""
    if kind == "alias":
        return champion() == 2
    protected["v2"].refresh_from_db()
    return protected["v2"].stage == target


@pytest.mark.parametrize(("kind", "target"), MOVES, ids=[f"{k}:{t}" for k, t in MOVES])
@pytest.mark.parametrize(("name", "document", "approvers", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_explain_says_blocked_exactly_when_execution_refuses(protected, team, owner, officer, name, document,
                                                             approvers, expected, kind, target):
    people = {**team, "officer": officer}
    set_policy(protected, team, owner, document, scope=f"{kind}:{target}")
    request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind=kind,
                                                target=target, justification="Better AUC.")

    def explain_move() -> dict:
        return selectors.explain(model=protected["model"], version=protected["v2"], kind=kind, target=target)

    for who in approvers[:-1]:
        services.promotion_approve(request=request, actor=people[who])
    before_last = explain_move()
    assert before_last["request"]["id"] == request.pk
    request = services.promotion_approve(request=request, actor=people[approvers[-1]])
    executed = request.state == PromotionState.EXECUTED
    assert executed == _holds(protected, kind, target)
    if executed:
        # Explain, one approval short, named only the approvals as blocking; the last approval executed the move.
        assert [b["key"] for b in before_last["blockers"]] == ["approvals"]
        assert expected == set(), name
    else:
        after = explain_move()
        assert after["blocked"] and {b["key"] for b in after["blockers"]} == expected, name
        if request.state == PromotionState.APPROVED:  # a gate held it back: a retry is refused the same way
            blocked = AuditEvent.objects.filter(action="promotion.blocked").order_by("-seq").first()
            assert {b["key"] for b in blocked.data["blockers"]} == expected
            assert services.promotion_execute(request=request, actor=team["engineer"]).state == \
                PromotionState.APPROVED


def test_explain_writes_nothing(protected, team, owner, client):
    set_policy(protected, team, owner, {"quorum": 2, "gates": {"required": ["signature", "metrics"]},
                                        "metric_rules": [{"metric": "auc", "direction": "higher", "margin": 0}],
                                        "freeze_windows": [_other_day_window()]})
    request_champion(protected, team)
    events = AuditEvent.objects.count()
    client.force_login(team["viewer"])  # a session, not a token (whose last use the authentication records)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/promotions/explain", {"model": "churn", "version": 2, "kind": "alias",
                                                             "target": "champion"})
    assert response.status_code == 200, response.content
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == [] and AuditEvent.objects.count() == events
    body = response.json()
    assert body["blocked"] and body["policy"]["version"] == 2 and body["current_holder"] == 1
    gates = {g["key"]: g for g in body["gates"]}
    assert gates["signature"]["blocking"] and gates["metric:auc"]["compared"] == {
        "metric": "auc", "direction": "higher", "against": "holder", "candidate": 0.85, "margin": 0.0,
        "reference": 0.8, "holder_version": 1}
    assert gates["freeze_window"]["status"] == "passed" and body["freeze"]["active"] is False
    assert body["emergency_rollback"] == {"allowed": False, "who": ["maintainer"], "approvals_after": 0}
    assert client.get("/api/v1/promotions/explain", {"model": "churn"}).status_code == 400
    unprotected = client.get("/api/v1/promotions/explain", {"model": "churn", "version": 2, "target": "staging"})
    assert unprotected.status_code == 200 and unprotected.json()["blocked"] is False


# ------------------------------------------------------------------------------------------ emergency rollback


def test_emergency_rollback_follows_who_and_takes_approvals_after_the_fact(protected, team, owner, officer):
    request = request_champion(protected, team)
    services.promotion_approve(request=request, actor=team["r1"])
    services.promotion_approve(request=request, actor=team["r2"])
    set_policy(protected, team, owner, {"quorum": 2, "gates": {"required": ["metrics"]},
                                        "emergency_rollback": {"allowed": True, "who": ["compliance"],
                                                               "approvals_after": 1}})
    with pytest.raises(Forbidden, match="compliance officers"):
        services.promotion_rollback(model=protected["model"], actor=team["maint"], kind="alias", target="champion",
                                    reason="Outage.", emergency=True)
    rollback = services.promotion_rollback(model=protected["model"], actor=officer, kind="alias",
                                           target="champion", reason="Outage.", emergency=True)
    assert rollback.state == PromotionState.EXECUTED and champion() == 1 and rollback.approvals_required == 1
    services.promotion_approve(request=rollback, actor=team["r3"])  # the review after the fact
    assert AuditEvent.objects.filter(action="promotion.approved", data__after_emergency_rollback=True).exists()
    with pytest.raises(InvalidState):
        services.promotion_approve(request=rollback, actor=team["r1"])  # one was asked for; it is complete


# ---------------------------------------------------------------------------- the settings become the policy


def test_the_data_migration_turns_settings_into_policies_that_decide_the_same(protected, team, owner):
    model = protected["model"]
    ProtectedTarget.objects.create(model=model, kind="stage", name="Staging", approvals_required=1,
                                   required_gates=["metrics", "model_card"], allow_emergency_rollback=False,
                                   metric_rules=[{"metric": "auc", "higher_is_better": True, "margin": 0.01},
                                                 {"metric": "loss", "higher_is_better": False, "margin": 0.0}])
    PromotionPolicyVersion.objects.all().delete()  # as before the migration: settings rows only
    moves = [(v, kind, target) for v in (protected["v1"], protected["v2"])
             for kind, target in (("alias", "champion"), ("stage", "Production"), ("stage", "Staging"))]
    approvers = [[], [team["r1"]], [team["r1"], team["r2"]]]

    def verdicts():
        return [(v.number, kind, target, len(people), sorted(b["key"] for b in evaluation.evaluate_move(
            model=model, version=v, kind=kind, target=target, approvers=people).blockers()))
            for v, kind, target in moves for people in approvers]

    before = verdicts()
    assert all(evaluation.effective_policy(model, k, t).source == "protection" for _, k, t in moves)
    migration = importlib.import_module("governance.migrations.0007_promotion_policy")
    migration.protection_to_policies(apps, None)
    after = verdicts()
    assert before == after and any(b[-1] == [] for b in after) and any(b[-1] for b in after)
    versions = PromotionPolicyVersion.objects.filter(model=model)
    assert versions.count() == 3 and set(versions.values_list("state", "number")) == {("active", 1)}
    staging = versions.get(kind="stage", target="Staging")
    assert staging.document == from_protection(approvals_required=1, required_gates=["metrics", "model_card"],
                                               allow_emergency_rollback=False, metric_rules=[
                                                   {"metric": "auc", "higher_is_better": True, "margin": 0.01},
                                                   {"metric": "loss", "higher_is_better": False, "margin": 0.0}])
    assert evaluation.effective_policy(model, "stage", "Staging").source == "target"
    migration.protection_to_policies(apps, None)  # run twice: nothing more
    assert PromotionPolicyVersion.objects.filter(model=model).count() == 3


# --------------------------------------------------------------------------------------------- bad input

BAD = [
    ("quorum: two\n", "/quorum"),
    ("quorum: 2\nsurprise: 1\n", "/"),
    ("quorum: 2\ngates: {required: [vibes]}\n", "/gates/required/0"),
    ("quorum: 2\ngates: {required: [metrics], advisory: [metrics]}\n", "/gates/advisory/0"),
    ("quorum: 2\nmetric_rules: [{metric: f1, direction: higher}]\n", "/metric_rules/0/metric"),
    ("quorum: 2\nmetric_rules: [{metric: auc, direction: up}]\n", "/metric_rules/0/direction"),
    ("quorum: 2\nmetric_rules: [{metric: auc, direction: higher, against: floor}]\n", "/metric_rules/0"),
    ("quorum: 9\n", "/quorum"),
    ("quorum: 2\nroles: {compliance: 1}\n", "/roles/compliance"),
    ("quorum: 1\nroles: {reviewer: 2}\n", "/roles"),
    ("quorum: 2\nfreeze_windows: [{days: [mon, tue, wed, thu, fri, sat, sun]}]\n", "/freeze_windows"),
    ("quorum: 2\nfreeze_windows: [{days: [mon, tue, wed, thu], timezone: Europe/Paris}, "
     "{days: [fri, sat, sun], timezone: Europe/Paris}]\n", "/freeze_windows"),
    ("quorum: 2\nfreeze_windows: [{days: [sat], timezone: Mars/Olympus}]\n", "/freeze_windows/0/timezone"),
    ("quorum: 2\nfreeze_windows: [{days: [sat], start: '18:00', end: '09:00'}]\n", "/freeze_windows/0/end"),
    ("quorum: 2\nfreeze_windows: [{from: '2027-01-05', until: '2027-01-01'}]\n", "/freeze_windows/0/until"),
    ("quorum: [2\n", "/"),
    ("- quorum: 2\n", "/"),
]


@pytest.mark.parametrize(("source", "where"), BAD, ids=[b[1] + ":" + b[0][:30] for b in BAD])
def test_bad_policies_are_refused_naming_the_field(protected, owner, source, where):
    versions = PromotionPolicyVersion.objects.count()
    with pytest.raises(PolicyInvalid) as refused:
        policy_services.policy_propose(model=protected["model"], actor=owner, scope="alias:champion", source=source)
    assert refused.value.message.startswith(f"{where}:"), refused.value.message
    assert where in refused.value.details["fields"]
    assert PromotionPolicyVersion.objects.count() == versions


def test_a_quorum_counts_the_people_who_could_approve(protected, team, owner, officer):
    # owner, maint, r1, r2, r3: five reviewers (or above); with compliance roles the officer makes six.
    policy_services.policy_propose(model=protected["model"], actor=owner, scope="default", source="quorum: 5\n")
    with pytest.raises(PolicyInvalid, match="/quorum"):
        policy_services.policy_propose(model=protected["model"], actor=team["maint"], scope="stage:Production",
                                       source="quorum: 6\n")
    policy_services.policy_propose(model=protected["model"], actor=team["maint"], scope="stage:Production",
                                   source="quorum: 6\nroles: {compliance: 1}\n")
