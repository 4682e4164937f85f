"""Protected targets and promotion requests: the gate, four eyes, quorum, atomic execution, gates, rollback."""

from __future__ import annotations

import pytest
from django.utils import timezone

from governance import permissions, selectors, services
from governance.models import AuditEvent, PromotionRequest, PromotionState
from registry import services as registry_services
from registry.errors import Forbidden, InvalidInput, InvalidState, NotFound
from registry.models import Alias, ModelVersion, Stage
from tests.governance.policy_support import approve_pending, protect

pytestmark = pytest.mark.django_db


def actions_since(seq: int) -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("action", "actor_username"))


def head() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def request_champion(protected, team, **kwargs):
    return services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                             target="champion", justification="Better AUC on fresh data.", **kwargs)


# ------------------------------------------------------------------------------------------------ the gate


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_direct_moves_onto_protected_targets_are_refused_for_everyone(protected, owner, staff, who):
    actor = owner if who == "owner" else staff
    with pytest.raises(Forbidden, match=r"alias @champion of model 'churn' is protected.*promotion request"):
        registry_services.alias_set(model=protected["model"], alias="champion", version=protected["v2"], actor=actor)
    with pytest.raises(Forbidden, match=r"stage Production .* is protected"):
        registry_services.version_transition_stage(version=protected["v2"], actor=actor, stage="production")
    assert Alias.objects.get(name="champion").version == protected["v1"]
    assert ModelVersion.objects.get(pk=protected["v2"].pk).stage == Stage.NONE


def test_unprotected_targets_still_move_freely(protected, owner):
    start = head()
    registry_services.alias_set(model=protected["model"], alias="challenger", version=protected["v2"], actor=owner)
    registry_services.version_transition_stage(version=protected["v2"], actor=owner, stage="Staging")
    assert Alias.objects.get(model=protected["model"], name="challenger").version == protected["v2"]
    assert ModelVersion.objects.get(pk=protected["v2"].pk).stage == Stage.STAGING
    assert actions_since(start) == [("model_version_alias.set", "owner"),
                                    ("model_version.stage_transitioned", "owner")]
    moved = AuditEvent.objects.get(seq=start + 1)
    assert moved.data["alias"] == "challenger" and moved.data["to_version"] == protected["v2"].number
    assert not PromotionRequest.objects.exists()  # no request was needed, and none was opened


def test_the_api_refusal_names_the_request_to_open(protected, owner, api_client_for):
    response = api_client_for(owner).put("/api/v1/models/churn/aliases/champion", {"version": 2}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "PERMISSION_DENIED" and "POST /api/v1/promotions" in error["message"]
    assert error["details"]["promotion_request"] == {"model": "churn", "version": 2, "kind": "alias",
                                                     "target": "champion", "approvals_required": 2,
                                                     "open_at": "/api/v1/promotions",
                                                     "request_url": "/models/churn/versions/2/promote/"
                                                                    "?target=alias:champion"}
    stage = api_client_for(owner).post("/api/v1/models/churn/versions/2/stage", {"stage": "Production"},
                                       format="json")
    assert stage.status_code == 403 and stage.json()["error"]["code"] == "PERMISSION_DENIED"


def test_the_page_answers_a_protected_move_with_the_request_form(protected, owner, client):
    client.force_login(owner)
    response = client.post("/models/churn/aliases/", {"alias": "champion", "version": 2}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [("/models/churn/versions/2/promote/?target=alias:champion", 302)]
    assert b"@champion is protected" in response.content and b"Open request" in response.content


def test_protection_is_for_maintainers_and_audited(protected, team, owner):
    with pytest.raises(Forbidden):
        services.protected_target_set(model=protected["model"], actor=team["r1"], kind="alias", name="prod")
    with pytest.raises(InvalidInput):
        services.protected_target_set(model=protected["model"], actor=owner, kind="stage", name="Archived")
    start = head()
    services.protected_target_set(model=protected["model"], actor=team["maint"], kind=None, name="prod",
                                  approvals_required=1, metric_rules=[{"metric": "auc", "margin": 0.01}])
    services.protected_target_delete(model=protected["model"], actor=team["maint"], kind="alias", name="prod")
    approve_pending(protected["model"], owner)  # lifting a protection waits for a second maintainer
    assert actions_since(start) == [("protected_target.created", "maint"), ("promotion_policy.proposed", "maint"),
                                    ("promotion_policy.approved", "owner")]


# ---------------------------------------------------------------------------------------- four eyes, quorum


def test_quorum_of_two_reviewers_moves_the_alias_atomically(protected, team):
    start = head()
    request = request_champion(protected, team)
    assert request.state == PromotionState.OPEN and request.holder_version_number == 1
    with pytest.raises(Forbidden, match="four-eyes"):
        services.promotion_approve(request=request, actor=team["engineer"])
    services.promotion_approve(request=request, actor=team["r1"], comment="Looks good.")
    assert Alias.objects.get(name="champion").version == protected["v1"]
    with pytest.raises(InvalidState, match="decides once"):
        services.promotion_approve(request=request, actor=team["r1"])
    request = services.promotion_approve(request=request, actor=team["r2"], comment="Agreed.")
    assert request.state == PromotionState.EXECUTED and request.executed_at
    assert Alias.objects.get(name="champion").version == protected["v2"]
    assert actions_since(start) == [
        ("promotion.requested", "engineer"), ("promotion.approved", "r1"), ("promotion.approved", "r2"),
        ("model_version_alias.set", "r2"), ("promotion.executed", "r2"),
    ]
    executed = AuditEvent.objects.get(action="promotion.executed")
    assert executed.data["approved_by"] == ["r1", "r2"] and executed.data["from_version"] == 1
    with pytest.raises(InvalidState, match="executed"):
        services.promotion_approve(request=request, actor=team["r3"])


def test_stage_promotion_archives_the_previous_holder(protected, team):
    request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind=None,
                                                target="production", justification="Ship it.")
    assert (request.kind, request.target) == ("stage", "Production")
    services.promotion_approve(request=request, actor=team["r1"])
    services.promotion_approve(request=request, actor=team["r2"])
    assert ModelVersion.objects.get(pk=protected["v2"].pk).stage == Stage.PRODUCTION
    assert ModelVersion.objects.get(pk=protected["v1"].pk).stage == Stage.ARCHIVED


def test_the_version_creator_never_counts(protected, team, grant, make_version):
    from registry.models import Role

    grant(protected["model"], team["engineer"], Role.REVIEWER)
    request = services.promotion_request_create(version=protected["v2"], actor=team["r1"], kind="alias",
                                                target="champion", justification="On behalf of engineer.")
    with pytest.raises(Forbidden, match="created this version"):
        services.promotion_approve(request=request, actor=team["engineer"])
    with pytest.raises(Forbidden, match="opened this request"):
        services.promotion_approve(request=request, actor=team["r1"])


def test_can_approve_is_the_one_rule_the_service_and_the_inbox_follow(protected, team, owner, outsider, staff):
    request = request_champion(protected, team)
    people = {**team, "owner": owner, "outsider": outsider, "staff": staff}
    allowed = {name for name, person in people.items() if permissions.can_approve(person, request)}
    assert allowed == {"r1", "r2", "r3", "maint", "owner", "staff"}
    for name, person in people.items():
        in_inbox = selectors.promotion_inbox(actor=person).filter(pk=request.pk).exists()
        assert in_inbox == (name in allowed), name
    assert "opened this request" in permissions.can_approve(team["engineer"], request).reason
    assert "Only reviewers" in permissions.can_approve(team["viewer"], request).reason
    with pytest.raises(Forbidden, match="Only reviewers"):
        services.promotion_approve(request=request, actor=team["viewer"])
    assert services.promotion_approve(request=request, actor=team["maint"]).decisions.count() == 1


def test_viewers_and_outsiders_cannot_decide(protected, team, outsider):
    request = request_champion(protected, team)
    with pytest.raises(Forbidden, match="Only reviewers"):
        services.promotion_approve(request=request, actor=team["viewer"])
    with pytest.raises(NotFound):
        services.promotion_approve(request=request, actor=outsider)


def test_a_rejection_closes_the_request(protected, team):
    request = request_champion(protected, team)
    with pytest.raises(InvalidInput, match="comment is required"):
        services.promotion_reject(request=request, actor=team["r1"], comment=" ")
    services.promotion_approve(request=request, actor=team["r2"])
    request = services.promotion_reject(request=request, actor=team["r1"], comment="Data drift unexplained.")
    assert request.state == PromotionState.REJECTED and request.closed_at
    with pytest.raises(InvalidState, match="rejected"):
        services.promotion_approve(request=request, actor=team["r3"])
    assert Alias.objects.get(name="champion").version == protected["v1"]


def test_duplicate_and_pointless_requests_are_refused(protected, team):
    request_champion(protected, team)
    with pytest.raises(InvalidState, match="already asks"):
        request_champion(protected, team)
    with pytest.raises(InvalidState, match="already holds"):
        services.promotion_request_create(version=protected["v1"], actor=team["engineer"], kind="alias",
                                          target="champion", justification="x")
    with pytest.raises(InvalidInput, match="not a protected target"):
        services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                          target="shadow", justification="x")
    with pytest.raises(InvalidInput, match="justification"):
        services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="stage",
                                          target="Production", justification="  ")
    with pytest.raises(Forbidden):
        services.promotion_request_create(version=protected["v2"], actor=team["viewer"], kind="stage",
                                          target="Production", justification="Please.")


def test_cancel_by_requester_or_maintainer_only(protected, team):
    request = request_champion(protected, team)
    with pytest.raises(Forbidden):
        services.promotion_cancel(request=request, actor=team["r1"])
    request = services.promotion_cancel(request=request, actor=team["engineer"], comment="Retraining.")
    assert request.state == PromotionState.CANCELLED
    with pytest.raises(InvalidState):
        services.promotion_cancel(request=request, actor=team["maint"])


def test_stale_requests_expire(protected, team, settings):
    request = request_champion(protected, team)
    PromotionRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timezone.timedelta(days=settings.PROMOTION_EXPIRY_DAYS + 1))
    from governance.tasks import promotion_expire_stale

    assert promotion_expire_stale.delay().get() == 1
    assert PromotionRequest.objects.get(pk=request.pk).state == PromotionState.EXPIRED
    assert AuditEvent.objects.filter(action="promotion.expired", actor_username="system").count() == 1


# ---------------------------------------------------------------------------------------------------- gates


def test_gates_report_not_available_and_do_not_block_by_default(protected, team):
    request = request_champion(protected, team)
    status = {g["key"]: (g["status"], g["blocking"]) for g in request.gate_results}
    assert status["artifact_scan"] == ("not_available", False)
    assert status["signature"] == ("not_available", False)
    assert status["model_card"] == ("not_available", False)
    assert status["metrics"] == ("skipped", False)


def test_a_policy_can_make_not_available_block(protected, team, owner):
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
                                  approvals_required=1, required_gates=None)
    request = request_champion(protected, team)
    request = services.promotion_approve(request=request, actor=team["r1"])
    assert request.state == PromotionState.APPROVED
    assert Alias.objects.get(name="champion").version == protected["v1"]
    assert AuditEvent.objects.filter(action="promotion.blocked").count() == 1
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
                                  approvals_required=1, required_gates=["metrics"])
    request = services.promotion_execute(request=request, actor=team["engineer"])
    assert request.state == PromotionState.EXECUTED
    assert Alias.objects.get(name="champion").version == protected["v2"]


def test_metric_rules_compare_with_the_current_holder(protected, team, owner, make_version):
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
                                  approvals_required=1, required_gates=["metrics"], metric_rules=[
                                      {"metric": "auc", "higher_is_better": True, "margin": 0.0},
                                      {"metric": "loss", "higher_is_better": False, "margin": 0.05}])
    worse = make_version(protected["model"], team["engineer"], metrics={"auc": 0.70, "loss": 0.52})
    request = services.promotion_request_create(version=worse, actor=team["engineer"], kind="alias",
                                                target="champion", justification="Cheaper to serve.")
    results = {g["key"]: g for g in request.gate_results}
    assert results["metric:auc"]["status"] == "failed" and results["metric:auc"]["blocking"]
    assert "0.7 vs 0.8 (v1)" in results["metric:auc"]["detail"]
    assert results["metric:loss"]["status"] == "passed"  # 0.02 worse, within the 0.05 margin
    assert services.promotion_approve(request=request, actor=team["r1"]).state == PromotionState.APPROVED
    assert Alias.objects.get(name="champion").version == protected["v1"]
    better = request_champion(protected, team)
    assert all(not g["blocking"] for g in better.gate_results)


# ------------------------------------------------------------------------------------- history and rollback


def _promote(protected, team):
    request = request_champion(protected, team)
    services.promotion_approve(request=request, actor=team["r1"])
    return services.promotion_approve(request=request, actor=team["r2"])


def test_history_answers_what_held_a_target_at_a_time(protected, team):
    before = timezone.now()
    _promote(protected, team)
    then = selectors.model_history(model=protected["model"], at=before)
    now = selectors.model_history(model=protected["model"])
    assert then.aliases == {"champion": 1} and then.stages == {"Production": [1]}
    assert now.aliases == {"champion": 2}
    assert selectors.holder_sequence(model=protected["model"], kind="alias", target="champion") == [1, 2]


def test_rollback_opens_a_request_for_the_previous_holder(protected, team):
    _promote(protected, team)
    request = services.promotion_rollback(model=protected["model"], actor=team["engineer"], kind="alias",
                                          target="champion", reason="Latency regression.")
    assert request.is_rollback and request.version == protected["v1"] and request.state == PromotionState.OPEN
    with pytest.raises(InvalidInput, match="reason"):
        services.promotion_rollback(model=protected["model"], actor=team["engineer"], kind="alias",
                                    target="champion", reason="")


def test_emergency_rollback_executes_at_once_for_maintainers(protected, team, owner):
    _promote(protected, team)
    with pytest.raises(Forbidden):
        services.promotion_rollback(model=protected["model"], actor=team["r1"], kind="alias", target="champion",
                                    reason="Outage.", emergency=True)
    start = head()
    request = services.promotion_rollback(model=protected["model"], actor=team["maint"], kind="alias",
                                          target="champion", reason="Outage.", emergency=True)
    assert request.state == PromotionState.EXECUTED
    assert Alias.objects.get(name="champion").version == protected["v1"]
    assert [a for a, _ in actions_since(start)] == [
        "promotion.emergency_rollback_started", "model_version_alias.set", "promotion.executed"]
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
                                  allow_emergency_rollback=False)
    with pytest.raises(Forbidden, match="does not allow emergency"):
        services.promotion_rollback(model=protected["model"], actor=team["maint"], kind="alias",
                                    target="champion", reason="Again.", emergency=True)


def test_champion_policy_drives_the_challenger_verdict(registered_model, owner, make_version):
    from governance import services as gov
    from registry import services
    from registry.compare import selectors as compare

    champion = make_version(registered_model, metrics={"auc": 0.90, "latency": 10.0})
    challenger = make_version(registered_model, metrics={"auc": 0.905, "latency": 30.0})
    services.alias_set(model=registered_model, alias="champion", version=champion, actor=owner)
    services.alias_set(model=registered_model, alias="challenger", version=challenger, actor=owner)
    gov.protected_target_set(model=registered_model, actor=owner, name="champion", kind="alias",
                             metric_rules=[{"metric": "auc", "higher_is_better": True, "margin": 0.0}])
    rules = compare.metric_policy(registered_model, champion, challenger)
    assert [r["metric"] for r in rules] == ["auc"]


def test_a_justification_with_a_nul_is_refused(protected, team):
    with pytest.raises(InvalidInput, match="control characters"):
        services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                          target="champion", justification="Better\x00 AUC.")
    assert not PromotionRequest.objects.exists()
