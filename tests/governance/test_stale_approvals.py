"""Issue 23, item 1: approvals record the evidence they saw, go stale when it changes before the request executes,
the request returns to review, reviewers are told, and execution is refused until the quorum is met again."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth.models import Group
from django.core import mail
from django.core.files.storage import storages
from django.db import connection, connections
from django.test import Client

from governance import evidence, selectors, services
from governance.cards import services as card_services
from governance.erasure import services as erasure_services
from governance.models import AuditEvent, PromotionDecision, PromotionRequest, PromotionState
from registry import services as registry_services
from registry import tasks as registry_tasks
from registry.lineage import services as lineage
from registry.models import Alias, Artifact, ArtifactScan, ModelVersion, VersionStatus
from tests.conftest import need_service
from tests.governance.policy_support import protect
from tests.governance.test_cards import fill
from tests.registry.pickle_corpus import MALICIOUS

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ask(version, team, target: str = "champion") -> PromotionRequest:
    return services.promotion_request_create(version=version, actor=team["engineer"], kind="alias", target=target,
                                             justification="Better AUC on the 2026 data.")


def decision(request, user) -> PromotionDecision:
    return PromotionDecision.objects.filter(request=request, reviewer=user).order_by("-pk").first()


def stale_reasons(request) -> list[str]:
    return evidence.staleness(selectors.promotion_get(actor=request.requested_by, pk=request.pk))[1]


@pytest.fixture
def signing_key(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.STRATUM_SIGNING_KEY = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode()
    return key


@pytest.fixture
def iris(protected, owner, make_user):
    """v2 (the candidate) was trained on dataset iris@1, which holds a data subject."""
    officer = make_user("officer")
    officer.groups.add(Group.objects.get_or_create(name="compliance")[0])
    dataset = lineage.node_create(actor=owner, kind="dataset", name="iris", version="1",
                                  digest="sha256:" + "1" * 64).obj
    node = lineage.node_create(actor=owner, kind="model_version", model_version=protected["v2"]).obj
    lineage.edge_create(actor=owner, upstream=dataset, downstream=node, kind="trained_on")
    erasure_services.manifest_upload(node=dataset, actor=officer, identifiers=["jane@example.org"])
    return {"dataset": dataset, "officer": officer}


# ------------------------------------------------------------------------------------------ what is recorded


def test_an_approval_records_the_evidence_it_saw(protected, team, iris):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    seen = decision(request, team["r1"]).evidence
    assert seen["holder"] == 1
    assert seen["candidate.metrics.auc"] == 0.85 and seen["holder.metrics.auc"] == 0.80
    assert seen["card.revision"] == card.revision and seen["card.sha256"] == card.sha256
    assert seen["card.state"] == "draft"
    assert seen["signature.status"] == "unsigned" and seen["signature.digest"] is None
    assert seen["lineage.dataset:iris@1"] is True
    assert seen["lineage.dataset:iris@1.newer"] is None and seen["lineage.dataset:iris@1.erasure"] is False
    assert not decision(request, team["r1"]).stale


# ---------------------------------------------------------------------------------- each trigger, eagerly


def _stale_after(request, team, change, hooks) -> list[str]:
    """Approve as r1, make `change` (its events committed), and return why r1's approval went stale."""
    services.promotion_approve(request=request, actor=team["r1"])
    with hooks(execute=True):
        change()
    request.refresh_from_db()
    assert request.state == PromotionState.OPEN
    mine = decision(request, team["r1"])
    assert mine.stale, "the approval should have gone stale"
    assert AuditEvent.objects.filter(action="promotion.evidence_changed", target_id=str(request.pk)).exists()
    return mine.stale_reasons


def test_a_card_edit_makes_the_approval_stale(protected, team, django_capture_on_commit_callbacks):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    request = ask(protected["v2"], team)
    before = card.revision
    why = _stale_after(request, team, lambda: card_services.card_update(
        card=card, actor=team["engineer"], section="caveats_recommendations",
        values={"limitations": "Trained on 2026 data only; not for 2027."}), django_capture_on_commit_callbacks)
    assert why == [f"card edited: revision {before} → {before + 1}"]


def test_a_card_review_step_makes_the_approval_stale_and_says_it_was_not_an_edit(
        protected, team, django_capture_on_commit_callbacks):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    request = ask(protected["v2"], team)
    before = card.revision
    why = _stale_after(request, team, lambda: card_services.card_submit(card=card, actor=team["engineer"]),
                       django_capture_on_commit_callbacks)
    assert why == [f"card draft → in review (revision {before} → {before + 1})"]


def test_a_candidate_metric_change_makes_the_approval_stale(protected, team, django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    why = _stale_after(request, team, lambda: registry_services.version_update(
        version=protected["v2"], actor=team["engineer"], metrics={"auc": 0.83, "loss": 0.4}),
        django_capture_on_commit_callbacks)
    assert why == ["candidate metric auc changed: 0.85 → 0.83"]


def test_the_champion_moving_makes_the_approval_stale(protected, team, make_version,
                                                      django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    v3 = make_version(protected["model"], team["engineer"], metrics={"auc": 0.9, "loss": 0.3})
    other = ask(v3, team)

    def move() -> None:
        services.promotion_approve(request=other, actor=team["r2"])
        services.promotion_approve(request=other, actor=team["r3"])

    why = _stale_after(request, team, move, django_capture_on_commit_callbacks)
    assert Alias.objects.get(name="champion").version == v3
    assert why == ["champion moved from v1 to v3"]


def test_an_erasure_obligation_on_the_dataset_makes_the_approval_stale(protected, team, iris,
                                                                         django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    why = _stale_after(request, team, lambda: erasure_services.erasure_request_create(
        actor=iris["officer"], identifier="jane@example.org"), django_capture_on_commit_callbacks)
    assert why == ["dataset iris@1 has an erasure obligation"]


def test_a_newer_dataset_version_makes_the_approval_stale(protected, team, owner, iris,
                                                          django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    why = _stale_after(request, team, lambda: lineage.node_create(
        actor=owner, kind="dataset", name="iris", version="2", digest="sha256:" + "2" * 64),
        django_capture_on_commit_callbacks)
    assert why == ["newer version of dataset iris: 2"]


def test_a_failed_signature_verification_makes_the_approval_stale(protected, team, owner, make_version,
                                                                  api_client_for, signing_key,
                                                                  django_capture_on_commit_callbacks):
    v3 = make_version(protected["model"], team["engineer"], metrics={"auc": 0.9},
                      files={"model.onnx": b"\x08\x07onnx-bytes", "README.md": b"# v3\n"})
    client = api_client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/models/churn/versions/3/signature").status_code == 202
    request = ask(v3, team)
    assert evidence.snapshot(request)["signature.status"] == "verified"

    def tamper_and_verify() -> None:
        readme = Artifact.objects.get(version=v3, path="README.md")
        Path(storages["artifacts"].path(readme.blob.storage_name)).write_bytes(b"# swapped on disk\n")
        assert client.post("/api/v1/models/churn/versions/3/signature/verify").status_code == 202

    why = _stale_after(request, team, tamper_and_verify, django_capture_on_commit_callbacks)
    assert why == ["signature verification failed"]


def test_a_rescan_that_quarantines_a_file_makes_the_approval_stale(protected, team, make_version,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        v3 = make_version(protected["model"], team["engineer"], metrics={"auc": 0.9},
                          files={"model.pkl": MALICIOUS["builtins.eval"][0]})
    # What an older scanner recorded: the file clean, and the version ready.
    ArtifactScan.objects.filter(artifact__version=v3).update(scanner="stratum-opcode-walk/1", verdict="safe",
                                                             quarantined=False, offending=[])
    ModelVersion.objects.filter(pk=v3.pk).update(status=VersionStatus.READY)
    request = ask(v3, team)

    def rescan() -> None:
        assert registry_tasks.scanner_rescan_tick() == 1

    why = _stale_after(request, team, rescan, django_capture_on_commit_callbacks)
    assert "rescan quarantined model.pkl" in why
    assert any(reason.startswith("scanner version stratum-opcode-walk/1 → ") for reason in why)


# ---------------------------------------------------------------------------- blocked until re-approved


def test_a_stale_request_executes_only_once_the_quorum_reapproves_on_current_evidence(
        protected, team, django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.version_update(version=protected["v2"], actor=team["engineer"],
                                         metrics={"auc": 0.86, "loss": 0.4})
    request = services.promotion_approve(request=request, actor=team["r2"])
    assert request.state == PromotionState.OPEN  # r1's stale approval does not count: 1 of 2
    assert Alias.objects.get(name="champion").version == protected["v1"]
    assert request in selectors.promotion_inbox(actor=team["r1"])  # back in r1's inbox
    request = services.promotion_approve(request=request, actor=team["r1"], comment="Checked the new AUC.")
    assert request.state == PromotionState.EXECUTED
    assert Alias.objects.get(name="champion").version == protected["v2"]
    r1 = list(PromotionDecision.objects.filter(request=request, reviewer=team["r1"]).order_by("pk"))
    assert [d.stale for d in r1] == [True, False]  # the stale approval is kept beside the new one
    executed = AuditEvent.objects.get(action="promotion.executed", target_id=str(request.pk))
    assert sorted(executed.data["approved_by"]) == ["r1", "r2"]


def test_execution_is_refused_with_409_and_the_check_at_execute_time_catches_what_no_event_said(
        protected, team, owner, api_client_for):
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
            approvals_required=2, required_gates=["signature"])
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    request = services.promotion_approve(request=request, actor=team["r2"])
    assert request.state == PromotionState.APPROVED  # held back by the unsigned version
    # A change no domain event announces: only the authoritative check at execute time can see it.
    ModelVersion.objects.filter(pk=protected["v2"].pk).update(metrics={"auc": 0.70, "loss": 0.4})
    response = api_client_for(team["engineer"]).post(f"/api/v1/promotions/{request.pk}/execute")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "APPROVALS_STALE"
    assert "candidate metric auc changed: 0.85 → 0.7" in error["message"]
    assert error["details"]["approvals"] == 0 and error["details"]["approvals_required"] == 2
    request.refresh_from_db()
    assert request.state == PromotionState.OPEN  # the finding stayed recorded though execution was refused
    assert all(d.stale for d in request.decisions.all())
    assert Alias.objects.get(name="champion").version == protected["v1"]
    refused = AuditEvent.objects.filter(action="promotion.refused", data__attempt="execute").last()
    assert "went back to review" in refused.data["reason"]


def test_an_approval_given_after_an_unannounced_change_does_not_count_the_older_one(protected, team):
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    ModelVersion.objects.filter(pk=protected["v2"].pk).update(metrics={"auc": 0.86, "loss": 0.4})
    request = services.promotion_approve(request=request, actor=team["r2"])
    assert request.state == PromotionState.OPEN and decision(request, team["r1"]).stale
    assert not decision(request, team["r2"]).stale


def test_the_authoritative_check_refuses_when_counted_approvals_saw_other_evidence(protected, team):
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    ModelVersion.objects.filter(pk=protected["v2"].pk).update(metrics={"auc": 0.1})
    request = PromotionRequest.objects.select_related("model", "version").get(pk=request.pk)
    with pytest.raises(evidence.ApprovalsStale, match=re.escape("candidate metric auc changed: 0.85 → 0.1")):
        evidence.ensure_current(request)


# ------------------------------------------------------------------------------ reviewers told, API, page


def test_reviewers_are_emailed_when_approvals_go_stale(protected, team, django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.version_update(version=protected["v2"], actor=team["engineer"],
                                         metrics={"auc": 0.84, "loss": 0.4})
    told = sorted(m.to[0] for m in mail.outbox)
    assert told == ["engineer@example.com", "maint@example.com", "owner@example.com", "r1@example.com",
                    "r2@example.com", "r3@example.com"]
    message = mail.outbox[0]
    assert "Back to review" in message.subject and "candidate metric auc changed: 0.85 → 0.84" in message.body
    assert f"/promotions/{request.pk}/" in message.body
    assert selectors.review_waiting_count(actor=team["r1"]) == 1  # the inbox badge counts it again
    inbox = login(team["r1"]).get("/reviews/").content.decode()
    row = inbox[inbox.index(f"/promotions/{request.pk}/"):]
    row = row[:row.index("</tr>")]
    assert "0 / 2" in row and "Back in review" in row


def test_the_api_shows_stale_and_why(protected, team, api_client_for, django_capture_on_commit_callbacks):
    request = ask(protected["v2"], team)
    client = api_client_for(team["r1"])
    assert client.post(f"/api/v1/promotions/{request.pk}/approve", {}, format="json").status_code == 200
    body = client.get(f"/api/v1/promotions/{request.pk}").json()
    assert body["stale"] is False and body["stale_reasons"] == [] and body["approvals"] == 1
    assert body["decisions"][0]["stale"] is False and body["decisions"][0]["stale_reason"] == ""
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.version_update(version=protected["v2"], actor=team["engineer"],
                                         metrics={"auc": 0.84, "loss": 0.4})
    body = client.get(f"/api/v1/promotions/{request.pk}").json()
    assert body["stale"] is True and body["state"] == "open" and body["approvals"] == 0
    assert body["stale_reasons"] == ["candidate metric auc changed: 0.85 → 0.84"]
    assert body["decisions"][0]["stale"] is True
    assert body["decisions"][0]["stale_reason"] == "candidate metric auc changed: 0.85 → 0.84"
    listed = client.get("/api/v1/promotions?waiting=me").json()["results"]
    assert [r["id"] for r in listed] == [request.pk] and listed[0]["stale"] is True
    again = client.post(f"/api/v1/promotions/{request.pk}/approve", {"comment": "Still fine."}, format="json")
    assert again.status_code == 200 and again.json()["approvals"] == 1
    twice = client.post(f"/api/v1/promotions/{request.pk}/approve", {}, format="json")
    assert twice.status_code == 409 and "already decided" in twice.json()["error"]["message"]


def test_the_page_marks_stale_approvals_and_shows_what_changed(protected, team, django_capture_on_commit_callbacks):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    before = card.revision
    body = login(team["r1"]).get(f"/promotions/{request.pk}/").content.decode()
    assert "Evidence since each approval" in body and "Nothing changed since this approval." in body
    with django_capture_on_commit_callbacks(execute=True):
        card_services.card_update(card=card, actor=team["engineer"], section="caveats_recommendations",
                                  values={"limitations": "Not for 2027."})
    body = login(team["r1"]).get(f"/promotions/{request.pk}/").content.decode()
    assert "Back in review: the evidence changed since approval." in body
    assert f"card edited: revision {before} → {before + 1}" in body
    assert 'stale-marker' in body and "Stale: card edited" in body
    diff = body[body.index('id="evidence"'):]
    diff = diff[:diff.index("</section>")]
    assert "<th scope=\"row\">model card revision</th>" in diff
    assert f"<td class=\"mono wrap\">{before}</td><td class=\"mono wrap\">→ {before + 1}</td>" in diff
    assert "model card sha256" in diff
    assert 'value="approve"' in body  # r1 may approve again, on the current evidence


def test_a_stale_execute_from_the_page_reads_as_a_message(protected, team, owner):
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
            approvals_required=2, required_gates=["signature"])
    request = ask(protected["v2"], team)
    services.promotion_approve(request=request, actor=team["r1"])
    services.promotion_approve(request=request, actor=team["r2"])
    ModelVersion.objects.filter(pk=protected["v2"].pk).update(metrics={"auc": 0.70, "loss": 0.4})
    response = login(team["engineer"]).post(f"/promotions/{request.pk}/", {"decision": "execute"},
                                            HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    body = response.content.decode()
    assert "went back to review because its evidence changed" in body and "Stale" in body


# ----------------------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_card_edit_racing_the_final_approval_never_executes_on_stale_evidence(protected, team):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    seen: set[str] = set()
    for round_number in range(8):
        if round_number >= 4 and len(seen) == 2:
            break
        # Each order gets a head start in turn (longer in later rounds, for a loaded machine); the one behind
        # may still overlap the one ahead, which is the race this test is about.
        head_start = 1.0 + round_number // 2
        request = ask(protected["v2"], team)
        services.promotion_approve(request=request, actor=team["r1"])
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def approve(request=request, barrier=barrier, outcomes=outcomes, n=round_number, head_start=head_start) -> None:
            try:
                barrier.wait()
                if n % 2 == 0:
                    time.sleep(head_start)  # the edit goes first
                outcomes["approve"] = services.promotion_approve(request=request, actor=team["r2"]).state
            except Exception as exc:
                outcomes["approve"] = type(exc).__name__
            finally:
                connections.close_all()

        def edit(card=card, barrier=barrier, outcomes=outcomes, n=round_number, head_start=head_start) -> None:
            try:
                barrier.wait()
                if n % 2:
                    time.sleep(head_start)  # the approval goes first
                card_services.card_update(card=card, actor=team["engineer"], section="caveats_recommendations",
                                          values={"limitations": f"Round {n}."})
                outcomes["edit"] = "edited"
            except Exception as exc:
                outcomes["edit"] = type(exc).__name__
            finally:
                connections.close_all()

        threads = [threading.Thread(target=approve), threading.Thread(target=edit)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes["edit"] == "edited", outcomes
        request.refresh_from_db()
        r1 = decision(request, team["r1"])
        seen.add(request.state)
        if request.state == PromotionState.EXECUTED:
            # The approval won the lock: it executed on the evidence both approvals saw, before the edit.
            assert outcomes["approve"] == PromotionState.EXECUTED and not r1.stale
            services.promotion_rollback(model=protected["model"], actor=owner_of(protected), kind="alias",
                                        target="champion", reason="next round", emergency=True)
        else:
            # The edit won: its committed event (or the approval's own check) marked r1 stale; nothing moved.
            assert request.state == PromotionState.OPEN and r1.stale, (outcomes, request.state)
            assert r1.stale_reasons[0].startswith("card edited: revision")
            assert Alias.objects.get(name="champion").version == protected["v1"]
            services.promotion_cancel(request=request, actor=team["engineer"])
        card.refresh_from_db()
    assert seen == {PromotionState.EXECUTED, PromotionState.OPEN}, seen


def owner_of(protected):
    return protected["model"].owner


def test_lists_show_staleness_in_a_fixed_number_of_queries(protected, team, make_version, api_client_for,
                                                           django_capture_on_commit_callbacks):
    from django.test.utils import CaptureQueriesContext

    client = api_client_for(team["r2"])

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as api:
            assert client.get("/api/v1/promotions?state=open").status_code == 200
        with CaptureQueriesContext(connection) as page:
            assert login(team["r2"]).get("/reviews/").status_code == 200
        return len(api), len(page)

    def stale_request(metrics: dict) -> None:
        version = make_version(protected["model"], team["engineer"], metrics=metrics)
        request = ask(version, team)
        services.promotion_approve(request=request, actor=team["r1"])
        with django_capture_on_commit_callbacks(execute=True):
            registry_services.version_update(version=version, actor=team["engineer"],
                                             metrics={**metrics, "auc": 0.5})

    stale_request({"auc": 0.9})
    one = counts()
    stale_request({"auc": 0.91})
    stale_request({"auc": 0.92})
    three = counts()
    assert three[0] <= one[0] and three[1] <= one[1], (one, three)  # the first call also checks the token
    body = client.get("/api/v1/promotions?state=open").json()["results"]
    assert len(body) == 3 and all(r["stale"] for r in body)


def test_every_change_is_said_even_one_no_sentence_covers(protected, team):
    request = ask(protected["v2"], team)
    then = {"holder": 1, "lineage.dataset:iris@1": True, "lineage.dataset:iris@1.newer": "2",
            "lineage.dataset:iris@1.erasure": False, "holder.metrics.auc": 0.8}
    now = {**then, "lineage.dataset:iris@1.newer": None}
    assert evidence.reasons(evidence.changes(then, now, request), request) == ["dataset iris@1: newer version: 2 → —"]
    moved = {**then, "holder": 3, "holder.metrics.auc": 0.9}
    assert evidence.reasons(evidence.changes(then, moved, request), request) == ["champion moved from v1 to v3"]
    assert evidence.diff_rows(evidence.changes({"card.sha256": "a" * 64}, {"card.sha256": "b" * 64}, request)) == [
        {"field": "model card sha256", "then": "aaaaaaaaaaaa…", "now": "bbbbbbbbbbbb…"}]
