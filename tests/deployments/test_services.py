"""Rollout services: validation, each strategy, the monitor's verdicts, manual controls, registry follow and audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import analysis, selectors, services, serving
from deployments.models import AnalysisRun, Deployment, Endpoint, Outcome, Phase, RoutingRecord
from governance.models import AuditEvent
from registry.errors import AlreadyExists, Forbidden, InvalidInput, InvalidState, NotFound
from registry.lineage.models import EdgeKind, LineageEdge, NodeKind
from registry.models import Role
from tests.deployments.conftest import broken_onnx, iris_onnx
from tests.registry.pickle_corpus import MALICIOUS

pytestmark = pytest.mark.django_db

ROW = {"rows": [[5.1, 3.5, 1.4, 0.2]]}
FAST = {"window_seconds": 0, "min_requests": 5}


def served(predict, body=ROW, **headers) -> int:
    response = predict("churn-staging", body, **headers)
    assert response.status_code == 200, response.content
    return response.json()["version"]


@pytest.fixture
def v1(servable_version, registered_model):
    return servable_version(registered_model)


@pytest.fixture
def v2(servable_version, registered_model):
    return servable_version(registered_model, iris_onnx("different"))


@pytest.fixture
def live(v1, endpoint, owner):
    """The endpoint serving v1 directly."""
    return services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v1.number)


# ------------------------------------------------------------------------------------------ set-up rules


def test_environments_are_staff_only_and_validated(staff, owner):
    with pytest.raises(Forbidden):
        services.environment_create(actor=owner, name="prod")
    with pytest.raises(InvalidInput):
        services.environment_create(actor=staff, name="Prod Env")
    with pytest.raises(InvalidInput):
        services.environment_create(actor=staff, name="prod", follow_stage="Archived")
    services.environment_create(actor=staff, name="prod", requires_promotion=True, follow_alias="production")
    with pytest.raises(AlreadyExists):
        services.environment_create(actor=staff, name="prod")


def test_endpoints_need_a_maintainer(registered_model, environment, outsider, grant, make_user):
    with pytest.raises(NotFound):
        services.endpoint_create(actor=outsider, name="x", environment=environment, model=registered_model)
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        services.endpoint_create(actor=viewer, name="x", environment=environment, model=registered_model)
    with pytest.raises(InvalidInput):
        services.endpoint_create(actor=registered_model.owner, name="../x", environment=environment,
                                 model=registered_model)
    assert not Endpoint.objects.filter(name="x").exists()


def test_direct_deployment_routes_records_history_audits_and_links_lineage(live, endpoint, v1, predict):
    endpoint.refresh_from_db()
    assert live.phase == Phase.SUCCEEDED
    assert endpoint.routing["routes"][0]["number"] == v1.number and endpoint.generation == 1
    assert served(predict) == v1.number
    record = RoutingRecord.objects.get(endpoint=endpoint)
    assert record.routing["routes"][0]["version_id"] == v1.pk
    actions = set(AuditEvent.objects.filter(model_id=endpoint.model_id).values_list("action", flat=True))
    assert {"endpoint.created", "deployment.started", "deployment.succeeded"} <= actions
    edge = LineageEdge.objects.get(kind=EdgeKind.DEPLOYED_AS)
    assert edge.downstream.kind == NodeKind.DEPLOYMENT and edge.upstream.version == str(v1.number)


@pytest.mark.parametrize("problem", ["unscanned", "unsigned", "no_onnx", "quarantined"])
def test_only_scanned_signed_onnx_versions_are_served(problem, servable_version, make_version, registered_model,
                                                      endpoint, owner, django_capture_on_commit_callbacks):
    if problem == "quarantined":  # a pickle that calls eval: quarantined by its scan, so never converted to ONNX
        with django_capture_on_commit_callbacks(execute=True):
            version = make_version(registered_model, files={"model.pkl": MALICIOUS["builtins.eval"][0]})
    elif problem == "no_onnx":
        with django_capture_on_commit_callbacks(execute=True):
            version = make_version(registered_model, files={"notes.txt": b"hello"})
    else:
        version = servable_version(registered_model, scan=problem != "unscanned", sign=problem != "unsigned")
    expected = {"unscanned": "still being scanned", "unsigned": "unsigned, and environment staging requires signed",
                "no_onnx": "no ONNX file", "quarantined": "quarantined (model.pkl)"}[problem]
    # The form's list and the service refuse with the same reason, from the one selector.
    reasons = dict((v.number, reason) for v, reason in selectors.deployable_versions(endpoint=endpoint))
    assert expected in reasons[version.number]
    with pytest.raises(InvalidInput) as refused:
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    assert refused.value.message == (f"Version {version.number} of {registered_model.name!r} cannot be deployed to "
                                     f"'churn-staging': {reasons[version.number]}.")
    if problem == "quarantined":
        assert "ONNX" not in refused.value.message
    endpoint.refresh_from_db()
    assert endpoint.generation == 0 and not Deployment.objects.exists()


def test_an_environment_without_the_signature_rule_serves_unsigned_versions(servable_version, registered_model,
                                                                           staff, owner):
    lab = services.environment_create(actor=staff, name="lab", requires_signature=False)
    endpoint = services.endpoint_create(actor=owner, name="churn-lab", environment=lab, model=registered_model)
    version = servable_version(registered_model, sign=False)
    assert selectors.deployable_versions(endpoint=endpoint) == [(version, None)]
    assert services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct",
                                     version=version.number).phase == Phase.SUCCEEDED
    event = AuditEvent.objects.get(action="environment.created", data__name="lab")
    assert event.data["requires_signature"] is False


def test_changed_file_after_signing_blocks_going_live(servable_version, registered_model, endpoint, owner):
    from registry import services as registry_services
    from tests.conftest import spooled

    version = servable_version(registered_model)
    from registry.pipeline.jobs import job_run
    from registry.pipeline.scan.services import scan_enqueue

    extra = registry_services.artifact_add(version=version, actor=owner, path="extra.txt", upload=spooled(b"late"))
    job_run(scan_enqueue(extra).pk)
    with pytest.raises(InvalidInput, match="signature"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)


@pytest.mark.parametrize("kwargs,message", [
    ({"strategy": "big-bang"}, "Unknown strategy"),
    ({"strategy": "canary", "steps": "fast"}, "list of 1"),
    ({"strategy": "canary", "steps": [{"set_weight": 150}]}, "0 to 100"),
    ({"strategy": "canary", "steps": [{"wait": 1}]}, "unknown step"),
    ({"strategy": "canary", "steps": [{"analysis": {"max_error_rate": 2}}]}, "fraction"),
    ({"strategy": "ab", "arms": [{"version": 1, "weight": 60}, {"version": 2, "weight": 30}]}, "add up to 100"),
    ({"strategy": "ab", "arms": [{"version": 1, "weight": 100}]}, "exactly two arms"),
    ({"strategy": "shadow", "shadow_percent": 0}, "shadow_percent"),
    ({"strategy": "direct", "steps": [{"set_weight": 5}]}, "Only canary"),
])
def test_bad_rollout_requests_change_nothing(live, v2, endpoint, owner, kwargs, message):
    endpoint.refresh_from_db()
    before = (endpoint.generation, Deployment.objects.count())
    with pytest.raises(InvalidInput, match=message):
        services.deployment_start(actor=owner, endpoint=endpoint, version=v2.number, **kwargs)
    endpoint.refresh_from_db()
    assert (endpoint.generation, Deployment.objects.count()) == before


def test_overlapping_rollouts_and_unknown_versions_are_refused(live, v2, endpoint, owner):
    with pytest.raises(NotFound):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=99)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number)
    with pytest.raises(InvalidState, match="already has a rollout"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v2.number)


def test_progressive_strategies_need_something_served_first(v2, endpoint, owner):
    with pytest.raises(InvalidInput, match="serves nothing yet"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number)


def test_viewers_cannot_deploy(live, v2, endpoint, make_user, grant, registered_model):
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        services.deployment_start(actor=viewer, endpoint=endpoint, strategy="direct", version=v2.number)
    with pytest.raises(Forbidden):
        services.deployment_rollback(deployment=live, actor=viewer)


# ---------------------------------------------------------------------------------------------- canary


def test_canary_walks_its_steps_with_timed_pauses_and_passing_analysis(live, v2, endpoint, owner, predict):
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number, steps=[
        {"set_weight": 100}, {"analysis": {**FAST, "max_label_psi": 100}}, {"pause": {"duration": 30}},
        {"set_weight": 100}])
    assert canary.weight == 100 and canary.step_index == 1
    for _ in range(6):
        assert served(predict) == v2.number  # weight 100: every request reaches the candidate
    serving.drain()
    canary = services.rollout_evaluate(deployment=canary)
    assert canary.step_index == 2 and canary.analysis_runs.get().verdict == "passed"
    canary = services.rollout_evaluate(deployment=canary)
    assert canary.step_index == 2, "the pause has not elapsed yet"
    canary = services.rollout_evaluate(deployment=canary, now=timezone.now() + timedelta(seconds=31))
    assert canary.phase == Phase.PROMOTING and canary.weight == 100, canary.message  # the old version stays warm
    canary = services.rollout_evaluate(deployment=canary, now=timezone.now() + timedelta(seconds=31 + 301))
    assert canary.phase == Phase.SUCCEEDED and canary.warm_until is None
    assert served(predict) == v2.number


def test_canary_of_a_broken_model_rolls_back_automatically(live, v1, servable_version, registered_model, endpoint,
                                                            owner, predict):
    broken = servable_version(registered_model, broken_onnx())
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=broken.number,
                                       steps=[{"set_weight": 100}, {"analysis": FAST}])
    for _ in range(6):
        response = predict("churn-staging", {"rows": [[2.0, 1.0, 1.0, 1.0]]})
        assert response.status_code == 502 and response.json()["error"]["code"] == "MODEL_ERROR"
    serving.drain()
    canary = services.rollout_evaluate(deployment=canary)
    assert canary.phase == Phase.FAILED and "error rate" in canary.message
    # Said in percent, and as the monitor's doing, not a person's.
    assert canary.ended_by is None
    assert canary.phase_label == "Rolled back automatically: analysis failed at step 2: error rate 100% > 5%"
    assert served(predict) == v1.number
    assert AuditEvent.objects.filter(action="deployment.rolled_back").exists()


def test_failure_limit_tolerates_a_failed_analysis(live, servable_version, registered_model, endpoint, owner,
                                                   predict):
    broken = servable_version(registered_model, broken_onnx())
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=broken.number,
                                       steps=[{"set_weight": 100}, {"analysis": {**FAST, "failure_limit": 1}}])
    # Both analyses judge from a moment taken before the traffic: their windows start in the 10-second statistics
    # bucket the requests land in, whenever the clock crosses into the next bucket.
    before = timezone.now()
    for _ in range(6):
        predict("churn-staging", {"rows": [[2.0, 1.0, 1.0, 1.0]]})
    serving.drain()
    canary = services.rollout_evaluate(deployment=canary, now=before)
    assert canary.phase == Phase.PROGRESSING and canary.failures == 1
    canary = services.rollout_evaluate(deployment=canary, now=before + timedelta(microseconds=1))
    assert canary.phase == Phase.FAILED


def test_too_little_traffic_is_inconclusive_and_pauses_for_a_person(live, v2, endpoint, owner):
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number,
                                       steps=[{"set_weight": 10}, {"analysis": FAST}])
    canary = services.rollout_evaluate(deployment=canary)
    assert canary.phase == Phase.PAUSED and "inconclusive" in canary.message
    assert canary.analysis_runs.get().verdict == "inconclusive"


def test_manual_controls_pause_resume_promote_abort(live, v1, v2, endpoint, owner, predict):
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number,
                                       steps=[{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}, {"pause": {}}])
    canary = services.deployment_pause(deployment=canary, actor=owner, reason="lunch")
    with pytest.raises(InvalidState):
        services.deployment_pause(deployment=canary, actor=owner)
    canary = services.deployment_resume(deployment=canary, actor=owner)
    canary = services.rollout_evaluate(deployment=canary)
    assert canary.phase == Phase.PAUSED and canary.step_index == 1  # an open pause waits for a person
    canary = services.deployment_promote(deployment=canary, actor=owner)
    assert (canary.weight, canary.step_index) == (60, 3)
    endpoint.refresh_from_db()
    assert sorted(r["weight"] for r in endpoint.routing["routes"]) == [40, 60]
    canary = services.deployment_abort(deployment=canary, actor=owner)
    assert canary.phase == Phase.ABORTED
    assert served(predict) == v1.number
    actions = list(AuditEvent.objects.filter(target_type="deployments.deployment").values_list("action", flat=True))
    for action in ("deployment.paused", "deployment.resumed", "deployment.promoted", "deployment.aborted"):
        assert action in actions


def test_rollback_of_a_finished_deployment_returns_to_the_last_good_version(live, v1, v2, endpoint, owner, predict):
    second = services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v2.number)
    assert served(predict) == v2.number
    back = services.deployment_rollback(deployment=second, actor=owner)
    assert back.rollback_of_id == second.pk and back.candidate_version_id == v1.pk and back.phase == Phase.SUCCEEDED
    assert served(predict) == v1.number
    with pytest.raises(InvalidState, match="not what endpoint"):
        services.deployment_rollback(deployment=second, actor=owner)


def test_an_operators_rollback_records_who_and_why(live, v1, v2, endpoint, owner, predict):
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number,
                                       steps=[{"set_weight": 50}, {"pause": {}}])
    canary = services.deployment_rollback(deployment=canary, actor=owner, reason="  checkout errors after 14:02 ")
    canary = selectors.deployment_get(actor=owner, pk=canary.pk)
    assert (canary.phase, canary.ended_by, canary.end_reason) == (Phase.FAILED, owner, "checkout errors after 14:02")
    assert canary.phase_label == "Rolled back by owner: checkout errors after 14:02"
    assert served(predict) == v1.number
    event = AuditEvent.objects.get(action="deployment.rolled_back")
    assert event.actor_id == owner.pk and event.data["reason"] == "checkout errors after 14:02"

    # No reason given: said so; an abort by hand is told apart from a rollback.
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number)
    assert services.deployment_rollback(deployment=canary, actor=owner).phase_label == \
        "Rolled back by owner: no reason given"
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number)
    assert services.deployment_abort(deployment=canary, actor=owner, reason="wrong version").phase_label == \
        "Aborted by owner: wrong version"
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=v2.number)
    with pytest.raises(InvalidInput, match="at most 500"):
        services.deployment_rollback(deployment=canary, actor=owner, reason="x" * 501)
    assert selectors.deployment_get(actor=owner, pk=canary.pk).active  # refused: nothing changed
    services.deployment_abort(deployment=canary, actor=owner)

    # A finished deployment rolled back: the one that was undone says who undid it and why.
    second = services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v2.number)
    services.deployment_rollback(deployment=second, actor=owner, reason="latency")
    assert selectors.deployment_get(actor=owner, pk=second.pk).phase_label == "Rolled back by owner: latency"


def test_the_first_deployment_has_nothing_to_roll_back_to(live, owner):
    with pytest.raises(InvalidState, match="first"):
        services.deployment_rollback(deployment=live, actor=owner)


def test_what_served_at_time_t(live, v1, v2, endpoint, owner):
    before = timezone.now()
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v2.number)
    assert selectors.routing_at(endpoint=endpoint, at=before).routing["routes"][0]["number"] == v1.number
    assert selectors.routing_at(endpoint=endpoint, at=timezone.now()).routing["routes"][0]["number"] == v2.number
    assert selectors.routing_at(endpoint=endpoint, at=before - timedelta(days=1)) is None


# ------------------------------------------------------------------------------------- other strategies


def test_blue_green_asked_to_auto_promote_switches_after_a_smoke_check(live, v1, v2, endpoint, owner, predict):
    bg = services.deployment_start(actor=owner, endpoint=endpoint, strategy="blue_green", version=v2.number,
                                   keep_warm_seconds=600, auto_promote=True)
    assert bg.phase == Phase.PENDING  # the preview is up, its smoke check not yet run
    assert served(predict) == v1.number
    assert served(predict, x_stratum_preview="1") == v2.number
    bg = services.rollout_evaluate(deployment=bg)
    assert bg.phase == Phase.PROMOTING and bg.warm_until > timezone.now()
    endpoint.refresh_from_db()
    assert endpoint.routing["warm"] == [endpoint.routing["rollback_route"]["sha256"]]
    assert served(predict) == v2.number
    back = services.deployment_rollback(deployment=bg, actor=owner)  # instant: v1 is still loaded
    assert back.pk == bg.pk and back.phase == Phase.FAILED
    assert served(predict) == v1.number


def test_promoting_ends_when_the_keep_warm_window_passes(live, v1, v2, endpoint, owner):
    bg = services.deployment_start(actor=owner, endpoint=endpoint, strategy="blue_green", version=v2.number,
                                   keep_warm_seconds=60, auto_promote=True)
    bg = services.rollout_evaluate(deployment=bg)
    assert services.rollout_evaluate(deployment=bg).phase == Phase.PROMOTING
    with pytest.raises(InvalidState, match="promote it fully"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v1.number)
    bg = services.rollout_evaluate(deployment=bg, now=timezone.now() + timedelta(seconds=61))
    assert bg.phase == Phase.SUCCEEDED
    endpoint.refresh_from_db()
    assert endpoint.routing["warm"] == [] and [r["number"] for r in endpoint.routing["routes"]] == [v2.number]
    assert AuditEvent.objects.filter(action="deployment.promoting").exists()


def test_blue_green_holds_at_preview_by_default_until_a_person_promotes(live, v1, v2, endpoint, owner, predict):
    bg = services.deployment_start(actor=owner, endpoint=endpoint, strategy="blue_green", version=v2.number)
    assert bg.auto_promote is False
    for _ in range(3):  # the monitor comes by again and again: the smoke check passes, the switch still waits
        bg = services.rollout_evaluate(deployment=bg, now=timezone.now() + timedelta(minutes=10))
    assert bg.phase == Phase.PAUSED and "Smoke check passed" in bg.message
    assert served(predict) == v1.number  # no live traffic for the candidate
    assert served(predict, x_stratum_preview="1") == v2.number  # but reachable as the preview
    bg = services.deployment_promote(deployment=bg, actor=owner, full=True)
    assert bg.phase == Phase.PROMOTING
    assert served(predict) == v2.number


def test_shadow_never_answers_and_its_agreement_is_measured(live, v1, v2, endpoint, owner, predict):
    shadow = services.deployment_start(actor=owner, endpoint=endpoint, strategy="shadow", version=v2.number,
                                       shadow_percent=100,
                                       analysis={**FAST, "min_agreement": 0.0, "max_label_psi": 100})
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    for i in range(9):
        assert served(predict, {"rows": [rows[i % 3]]}) == v1.number
    serving.drain()
    shadow = services.rollout_evaluate(deployment=shadow)
    run = shadow.analysis_runs.get()
    candidate = run.metrics["candidate"]
    assert candidate["role"] == "shadow" and candidate["compared"] == 9
    assert 0 <= candidate["agreement"] <= 1 and candidate["agreed"] < 9  # a depth-1 stump disagrees on class 2
    assert shadow.phase == Phase.PROGRESSING
    strict = {**FAST, "min_agreement": 0.99, "max_label_psi": 100}
    services.deployment_abort(deployment=shadow, actor=owner)
    shadow = services.deployment_start(actor=owner, endpoint=endpoint, strategy="shadow", version=v2.number,
                                       shadow_percent=100, analysis=strict)
    for i in range(9):
        served(predict, {"rows": [rows[i % 3]]})
    serving.drain()
    assert services.rollout_evaluate(deployment=shadow).phase == Phase.FAILED


def test_ab_assignment_is_sticky_and_outcomes_are_compared_with_sample_sizes(live, v1, v2, endpoint, owner, predict,
                                                                             make_user, grant, registered_model):
    ab = services.deployment_start(actor=owner, endpoint=endpoint, strategy="ab", version=v2.number,
                                   arms=[{"version": v1.number, "weight": 50}, {"version": v2.number, "weight": 50}])
    first = {f"user-{i}": served(predict, x_stratum_key=f"user-{i}") for i in range(40)}
    assert set(first.values()) == {v1.number, v2.number}
    assert all(served(predict, x_stratum_key=key) == number for key, number in first.items())
    missing = predict("churn-staging", ROW)
    assert missing.status_code == 400 and "X-Stratum-Key" in missing.json()["error"]["message"]
    for key, number in first.items():
        outcome = services.outcome_record(deployment=ab, actor=owner, metric="converted", value=1 if
                                          number == v2.number else 0, key=key)
        assert outcome.version.number == number and outcome.key_hash and key not in outcome.key_hash
    comparison = analysis.outcome_comparison(deployment=ab)[0]
    assert comparison["metric"] == "converted" and comparison["kind"] == "binary"
    assert "n=" in comparison["conclusion"] and comparison["sequential"]["method"].startswith("mSPRT")
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        services.outcome_record(deployment=ab, actor=viewer, metric="converted", value=1, key="x")
    with pytest.raises(InvalidInput):
        services.outcome_record(deployment=ab, actor=owner, metric="converted", value=float("nan"), key="x")
    with pytest.raises(InvalidInput):
        services.outcome_record(deployment=ab, actor=owner, metric="converted", value=1, version=99)
    assert Outcome.objects.count() == 40


# --------------------------------------------------------------------------------- registry and governance


def test_a_completed_rollout_moves_the_environment_alias(staff, registered_model, servable_version, owner):
    env = services.environment_create(actor=staff, name="prod", follow_alias="production", follow_stage="Production")
    endpoint = services.endpoint_create(actor=owner, name="churn-prod", environment=env, model=registered_model)
    version = servable_version(registered_model)
    deployment = services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    version.refresh_from_db()
    assert registered_model.aliases.get(name="production").version_id == version.pk
    assert version.stage == "Production" and "production" in deployment.message


def test_protected_environments_need_an_executed_promotion(staff, registered_model, servable_version, owner,
                                                           make_user, grant):
    from governance import services as governance

    governance.protected_target_set(model=registered_model, actor=owner, kind="alias", name="champion",
                                    approvals_required=1, required_gates=["metrics"])  # the version is not signed
    env = services.environment_create(actor=staff, name="prod", requires_promotion=True, follow_alias="champion")
    endpoint = services.endpoint_create(actor=owner, name="churn-prod", environment=env, model=registered_model)
    version = servable_version(registered_model)
    with pytest.raises(InvalidInput, match="no executed promotion request"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    reviewer = make_user("reviewer")
    grant(registered_model, reviewer, Role.REVIEWER)
    request = governance.promotion_request_create(version=version, actor=owner, kind="alias", target="champion",
                                                  justification="Better recall.")
    governance.promotion_approve(request=request, actor=reviewer)
    deployment = services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    assert deployment.phase == Phase.SUCCEEDED
    assert registered_model.aliases.get(name="champion").version_id == version.pk


def test_the_monitor_task_evaluates_every_progressing_rollout(live, v2, endpoint, owner):
    from deployments import tasks

    services.deployment_start(actor=owner, endpoint=endpoint, strategy="blue_green", version=v2.number,
                              auto_promote=True)
    assert tasks.rollout_monitor_tick() == 1
    assert Deployment.objects.get(strategy="blue_green").phase == Phase.PROMOTING
    assert AnalysisRun.objects.filter(verdict="passed").exists()


def test_a_rolled_back_canary_fires_the_models_degradation_trigger(live, servable_version, registered_model,
                                                                    endpoint, owner, predict,
                                                                    django_capture_on_commit_callbacks):
    from registry.models import RetrainRequest
    from registry.pipeline import triggers

    triggers.retrain_rule_create(model=registered_model, actor=owner, trigger="degradation")
    broken = servable_version(registered_model, broken_onnx())
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=broken.number,
                                       steps=[{"set_weight": 100}, {"analysis": FAST}])
    for _ in range(6):
        predict("churn-staging", {"rows": [[2.0, 1.0, 1.0, 1.0]]})
    serving.drain()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.rollout_evaluate(deployment=canary).phase == Phase.FAILED
    request = RetrainRequest.objects.get()
    assert "churn-staging" in request.reason and "error rate" in request.reason


def test_tampered_stored_bytes_never_go_live_nor_load(servable_version, registered_model, endpoint, owner, predict,
                                                      settings):
    from registry.artifacts.storage import artifact_storage

    version = servable_version(registered_model)
    blob = version.artifacts.get(path="model.onnx").blob
    path = artifact_storage().path(blob.storage_name)
    original = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(InvalidInput, match=r"model\.onnx"):
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    with open(path, "wb") as fh:
        fh.write(original)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    serving.reset()
    with open(path, "wb") as fh:
        fh.write(original[:-1] + bytes([original[-1] ^ 1]))
    response = predict("churn-staging", {"rows": [[5.1, 3.5, 1.4, 0.2]]})
    assert response.status_code == 502 and response.json()["error"]["code"] == "MODEL_INTEGRITY"


@pytest.mark.parametrize("shift,verdict", [(0.0, "passed"), (1.5, "failed")])
def test_canary_analysis_compares_numeric_predictions(shift, verdict, servable_version, registered_model, endpoint,
                                                      owner, predict):
    from tests.deployments.conftest import regressor_onnx

    signature = {"inputs": [{"name": f"f{i}", "type": "double"} for i in range(4)],
                 "outputs": [{"name": "width", "type": "double"}]}
    stable = servable_version(registered_model, regressor_onnx(0.0), signature=signature)
    candidate = servable_version(registered_model, regressor_onnx(shift), signature=signature)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    canary = services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=candidate.number,
                                       steps=[{"set_weight": 50},
                                              {"analysis": {**FAST, "window_seconds": 600, "min_requests": 10}}])
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.1, 1.5, 0.1]]
    counts = {stable.number: 0, candidate.number: 0}
    while min(counts.values()) < 30:
        response = predict("churn-staging", {"rows": [rows[sum(counts.values()) % 4]] * 3})
        counts[response.json()["version"]] += 1
    serving.drain()
    # Judged as the monitor would once the step's window is over, so the window holds every request the test sent
    # however long they took (a window of 0 s counted only the current 10-second bucket).
    canary.refresh_from_db()
    canary = services.rollout_evaluate(deployment=canary, now=canary.step_started_at + timedelta(seconds=600))
    run = canary.analysis_runs.get()
    assert run.verdict == verdict, run.detail
    assert run.metrics["value_shift"]["method"] == "two-sample Kolmogorov–Smirnov"


def test_deployable_versions_costs_a_few_queries_per_version_and_is_capped(v1, v2, endpoint,
                                                                           django_assert_max_num_queries):
    # Each version's trust is read through the pipeline's own selectors (scan, files, signature): about seven
    # queries a version, so the form lists at most DEPLOYABLE_LIST_LIMIT of the newest.
    with django_assert_max_num_queries(1 + 2 * 8):
        listed = selectors.deployable_versions(endpoint=endpoint)
    assert listed == [(v2, None), (v1, None)]
    assert selectors.deployable_versions(endpoint=endpoint, limit=1) == [(v2, None)]
