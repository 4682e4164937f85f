"""The review flow of issue 19: protected moves become requests, card reviews with a compliance role, gates that
explain, directional evidence, and notifications."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from governance import charts, gates, selectors, services
from governance.cards import services as card_services
from governance.models import CardState, PromotionState
from governance.permissions import card_review_refusal
from registry import access
from registry import services as registry_services
from registry.errors import Forbidden, InvalidInput, InvalidState, ProtectedMove
from registry.models import Alias, Role
from tests.governance.policy_support import approve_pending, protect
from tests.governance.test_cards import fill

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def officer(make_user, protected):
    """A member of the compliance group who can see the model (a viewer grant to the group)."""
    group, _ = Group.objects.get_or_create(name="compliance")
    person = make_user("officer")
    person.groups.add(group)
    access.role_grant(model=protected["model"], actor=protected["model"].owner, group=group, role=Role.VIEWER)
    return person


def submitted_card(protected, team):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    return card_services.card_submit(card=card, actor=team["engineer"])


# --------------------------------------------------------------------------- protected moves open a request form


def test_a_protected_stage_move_from_the_version_page_opens_the_request_form(protected, team):
    maint = login(team["maint"])
    page = maint.get("/models/churn/versions/2/").content.decode()
    assert "Protected: <strong>Production</strong> (2 approvals)" in page
    response = maint.post("/models/churn/versions/2/stage/", {"stage": "Production"})
    assert response.status_code == 302
    assert response["Location"] == "/models/churn/versions/2/promote/?target=stage:Production"
    form = maint.get(response["Location"]).content.decode()
    assert "Production is protected: moving version 2 there needs 2 approval(s)." in form
    assert '<option value="stage:Production" selected>' in form
    assert "Gates of Production" in form and "Who will review: <strong>owner</strong>, <strong>r1</strong>" in form
    assert "POST /api/v1/promotions" not in form
    protected["v2"].refresh_from_db()
    assert protected["v2"].stage != "Production"


def test_a_protected_alias_from_the_model_page_opens_the_request_form_and_the_api_still_refuses(
        protected, team, api_client_for):
    maint = login(team["maint"])
    assert "Setting a protected alias opens a promotion request" in maint.get("/models/churn/").content.decode()
    response = maint.post("/models/churn/aliases/", {"alias": "champion", "version": 2})
    assert response.status_code == 302
    assert response["Location"] == "/models/churn/versions/2/promote/?target=alias:champion"
    assert Alias.objects.get(name="champion").version == protected["v1"]
    created = maint.post(response["Location"], {"target": "alias:champion", "justification": "Better AUC."})
    assert created.status_code == 302 and created["Location"].startswith("/promotions/")
    api = api_client_for(team["maint"]).put("/api/v1/models/churn/aliases/champion", {"version": 2}, format="json")
    assert api.status_code == 403 and "POST /api/v1/promotions" in api.json()["error"]["message"]


def test_an_unprotected_move_still_moves_and_the_gate_raises_a_protected_move(protected, team):
    maint = login(team["maint"])
    response = maint.post("/models/churn/aliases/", {"alias": "challenger", "version": 2})
    assert response.status_code == 302 and Alias.objects.get(name="challenger").version == protected["v2"]
    with pytest.raises(ProtectedMove) as refused:
        registry_services.alias_set(model=protected["model"], alias="champion", version=protected["v2"],
                                    actor=team["maint"])
    assert refused.value.details["promotion_request"]["request_url"] == (
        "/models/churn/versions/2/promote/?target=alias:champion")


# ------------------------------------------------------------------------------------ gates: required, advisory


def test_required_gates_block_when_unavailable_and_name_their_fix(protected, team, owner):
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
                                  approvals_required=1, required_gates=["signature", "metrics"])
    request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                target="champion", justification="Better AUC.")
    results = {g["key"]: g for g in gates.evaluate(request)}
    assert results["signature"]["blocking"] and results["signature"]["required"]
    assert results["signature"]["fix"]["url"] == "/models/churn/versions/2/pipeline/"
    assert not results["artifact_scan"]["blocking"] and results["artifact_scan"]["required"] is False
    body = login(team["r1"]).get(f"/promotions/{request.pk}/").content.decode()
    assert "What would block this now" in body and "Sign (or re-verify) the files" in body
    request = services.promotion_approve(request=request, actor=team["r1"])
    assert request.state == PromotionState.APPROVED  # approved, held back by the required signature
    assert Alias.objects.get(name="champion").version == protected["v1"]


def test_the_settings_page_lists_gates_as_required_or_advisory(protected, team, owner):
    maint = login(team["maint"])
    response = maint.post("/models/churn/protection/", {"kind": "alias", "name": "champion",
                                                         "approvals_required": 2,
                                                         "required_gates": ["model_card", "metrics"]})
    assert response.status_code == 302
    approve_pending(protected["model"], owner)  # the change takes effect once a second maintainer approves it
    body = maint.get("/models/churn/protection/").content.decode()
    row = body[body.index('id="target-alias-champion"'):]
    row = row[:row.index("</tr>")]
    assert row.count("Required</span>") == 2 and row.count("Advisory</span>") == 2
    with pytest.raises(InvalidInput, match="Unknown gate"):
        services.protected_target_set(model=protected["model"], actor=owner, kind="alias", name="champion",
                                      required_gates=["vibes"])


# ------------------------------------------------------------------------------------------ card review policy


def test_card_reviews_reach_the_inbox_and_compliance_approves(protected, team, officer):
    card = submitted_card(protected, team)
    assert list(selectors.card_review_inbox(actor=officer)) == [card]
    assert list(selectors.card_review_inbox(actor=team["r1"])) == [card]
    assert list(selectors.card_review_inbox(actor=team["engineer"])) == []  # the submitter
    inbox = login(officer).get("/reviews/").content.decode()
    assert "Waiting for me: model cards" in inbox and "/models/churn/versions/2/card/" in inbox
    card = card_services.card_approve(card=card, actor=officer, comment="Checked.")
    assert card.state == CardState.APPROVED and card.approved_by == officer


def test_compliance_may_not_approve_promotions(protected, team, officer):
    request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                target="champion", justification="Better AUC.")
    with pytest.raises(Forbidden, match="Only reviewers"):
        services.promotion_approve(request=request, actor=officer)
    assert list(selectors.promotion_inbox(actor=officer)) == []


def test_the_policy_decides_who_approves_cards(protected, team, officer):
    card = submitted_card(protected, team)
    services.review_policy_set(model=protected["model"], actor=team["maint"], card_approvers="reviewers",
                               card_min_completeness=100)
    assert "Only reviewers of the model" in card_review_refusal(officer, card)
    assert list(selectors.card_review_inbox(actor=officer)) == []
    services.review_policy_set(model=protected["model"], actor=team["maint"], card_approvers="compliance",
                               card_min_completeness=100)
    assert "Only the compliance group" in card_review_refusal(team["r1"], card)
    with pytest.raises(Forbidden):
        card_services.card_approve(card=card, actor=team["r1"])
    assert card_review_refusal(officer, card) is None
    with pytest.raises(Forbidden, match="maintainers"):
        services.review_policy_set(model=protected["model"], actor=team["r1"], card_approvers="both",
                                   card_min_completeness=50)
    with pytest.raises(InvalidInput, match="1 to 100"):
        services.review_policy_set(model=protected["model"], actor=team["maint"], card_approvers="both",
                                   card_min_completeness=0)


def test_an_incomplete_card_cannot_be_sent_and_the_page_says_so_first(protected, team):
    card = card_services.card_create(version=protected["v2"], actor=team["engineer"])
    page = login(team["engineer"]).get("/models/churn/versions/2/card/").content.decode()
    assert 'value="submit" type="submit" disabled aria-describedby="submit-refusal"' in page
    assert f"The card is {card.completeness}% complete; &#x27;churn&#x27; needs 100%" in page
    with pytest.raises(InvalidState, match="needs 100%"):
        card_services.card_submit(card=card, actor=team["engineer"])
    fill(card, team["engineer"])
    page = login(team["engineer"]).get("/models/churn/versions/2/card/").content.decode()
    assert "disabled aria-describedby" not in page and "Reviewed by: maint, owner, r1, r2, r3" in page


# ------------------------------------------------------------------------------------------ directional evidence


def test_deltas_follow_each_metric_direction_and_params_show_changes_only(protected, team):
    request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                target="champion", justification="Better AUC.")
    rows = {r["name"]: r for r in selectors.promotion_comparison(request=request).metrics}
    assert rows["auc"]["verdict"] == "better" and rows["loss"]["verdict"] == "better"  # 0.4 < 0.5: lower wins
    assert selectors.metric_delta(0.6, 0.5, False)["verdict"] == "worse"
    body = login(team["r1"]).get(f"/promotions/{request.pk}/").content.decode()
    assert "↓ lower is better" in body and "▲ better" in body and "delta-better" in body
    assert "changed only (1)" in body and "show all 1" in body


def test_small_multiples_fit_the_axis_and_say_when_it_is_not_from_zero():
    rows = [{"name": "auc", "candidate": 0.986, "holder": 0.965, "higher_is_better": True, "verdict": "better"},
            {"name": "count", "candidate": 10, "holder": 1, "higher_is_better": True, "verdict": "better"}]
    auc, count = charts.metric_small_multiples(rows, candidate_label="v2", holder_label="v1")
    low, high = auc["figure"]["layout"]["yaxis"]["range"]
    assert 0.95 < low < 0.965 and 0.986 < high < 1.0 and not auc["zero_based"]
    assert auc["figure"]["layout"]["yaxis"]["title"]["text"] == "axis not from 0"
    assert count["zero_based"] and count["figure"]["layout"]["yaxis"]["range"][0] == 0


# ------------------------------------------------------------------------------------------------ notifications


def test_reviewers_are_emailed_when_a_request_waits_and_the_requester_when_decided(
        protected, team, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                    target="champion", justification="Better AUC.")
    assert sorted(m.to[0] for m in mail.outbox) == ["maint@example.com", "owner@example.com", "r1@example.com",
                                                     "r2@example.com", "r3@example.com"]
    assert all(f"/promotions/{request.pk}/" in m.body and "Better AUC." in m.body for m in mail.outbox)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.promotion_approve(request=request, actor=team["r1"])
    assert mail.outbox == []  # one approval of two decides nothing yet
    with django_capture_on_commit_callbacks(execute=True):
        services.promotion_approve(request=request, actor=team["r2"])
    assert [m.to for m in mail.outbox] == [["engineer@example.com"]]
    assert "executed" in mail.outbox[0].subject and "now holds @champion" in mail.outbox[0].body


def test_card_approvers_are_emailed_and_the_submitter_hears_the_verdict(
        protected, team, officer, django_capture_on_commit_callbacks):
    card = fill(card_services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    with django_capture_on_commit_callbacks(execute=True):
        card = card_services.card_submit(card=card, actor=team["engineer"])
    assert "officer@example.com" in {m.to[0] for m in mail.outbox}
    assert "engineer@example.com" not in {m.to[0] for m in mail.outbox}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        card_services.card_return(card=card, actor=officer, comment="Name the slices.")
    assert [m.to for m in mail.outbox] == [["engineer@example.com"]] and "Name the slices." in mail.outbox[0].body


def test_the_inbox_badge_counts_what_waits_in_one_query(protected, team, officer):
    services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                      target="champion", justification="Better AUC.")
    submitted_card(protected, team)
    assert selectors.review_waiting_count(actor=team["r1"]) == 2
    assert selectors.review_waiting_count(actor=officer) == 1
    assert selectors.review_waiting_count(actor=team["engineer"]) == 0
    for person, waiting in ((team["r1"], 2), (officer, 1)):
        fresh = get_user_model().objects.get(pk=person.pk)  # nothing cached on the object, as in a new request
        with CaptureQueriesContext(connection) as queries:
            assert selectors.review_waiting_count(actor=fresh) == waiting
        assert len(queries) == 1
    page = login(team["r1"]).get("/models/").content.decode()
    assert '<span class="nav-badge" title="2 waiting for your review">2' in page
    assert "nav-badge" not in login(team["engineer"]).get("/models/").content.decode()


def test_a_mail_server_that_is_down_does_not_undo_or_break_the_request(
        protected, team, settings, caplog, django_capture_on_commit_callbacks):
    import socket

    with socket.socket() as probe:  # a port nobody listens on: the SMTP connection is refused for real
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    settings.EMAIL_USE_TLS = False
    with django_capture_on_commit_callbacks(execute=True):
        request = services.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                    target="champion", justification="Better AUC.")
    assert request.pk and request.state == PromotionState.OPEN
    assert "Could not send the promotion.requested notification" in caplog.text


def test_the_review_policy_api_reads_and_sets_for_maintainers(protected, team, api_client_for, outsider):
    url = "/api/v1/models/churn/review-policy"
    assert api_client_for(team["viewer"]).get(url).json() == {"card_approvers": "both", "card_min_completeness": 100}
    refused = api_client_for(team["r1"]).put(url, {"card_approvers": "compliance", "card_min_completeness": 80},
                                              format="json")
    assert refused.status_code == 403
    bad = api_client_for(team["maint"]).put(url, {"card_approvers": "anyone", "card_min_completeness": 80},
                                             format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    done = api_client_for(team["maint"]).put(url, {"card_approvers": "compliance", "card_min_completeness": 80},
                                              format="json")
    assert done.status_code == 200 and done.json() == {"card_approvers": "compliance", "card_min_completeness": 80}
    assert api_client_for(outsider).get(url).status_code == 404
