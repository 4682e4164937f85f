"""The review flow in Chromium: a protected alias opens a request, two reviewers reach the quorum and the alias
moves; a reviewer who requested cannot approve; the compliance officer approves a card and exports its PDF."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from playwright.sync_api import Page, expect

from governance import services as governance_services
from governance.cards import services as card_services
from governance.models import CardState, ModelCard
from registry import access, services
from registry.models import Alias, Role
from tests.browser.test_governance_browser import sign_in
from tests.governance.test_cards import fill

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def churn(make_user):
    """churn: v1 (by the owner) holds the protected @champion; v2 (by erin) is the candidate; mia maintains,
    rita and ravi review, carla is in the compliance group (which may see the model)."""
    owner = make_user("olivia")
    people = {name: make_user(name) for name in ("erin", "mia", "rita", "ravi", "carla")}
    model = services.model_create(actor=owner, name="churn")
    access.role_grant(model=model, actor=owner, user=people["erin"], role=Role.CONTRIBUTOR)
    access.role_grant(model=model, actor=owner, user=people["mia"], role=Role.MAINTAINER)
    for name in ("rita", "ravi"):
        access.role_grant(model=model, actor=owner, user=people[name], role=Role.REVIEWER)
    compliance, _ = Group.objects.get_or_create(name="compliance")
    people["carla"].groups.add(compliance)
    access.role_grant(model=model, actor=owner, group=compliance, role=Role.VIEWER)
    v1 = services.version_create(model=model, actor=owner, metrics={"auc": 0.965, "loss": 0.30})
    v2 = services.version_create(model=model, actor=people["erin"], metrics={"auc": 0.986, "loss": 0.34},
                                 datasets=[{"name": "events-2026", "digest": "sha256:" + "1" * 64}])
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    governance_services.protected_target_set(model=model, actor=owner, kind="alias", name="champion",
                                             approvals_required=2, required_gates=["metrics"])
    return {"model": model, "v1": v1, "v2": v2, **people}


def test_the_alias_control_opens_a_request_and_two_reviewers_move_the_alias(page: Page, live_server, churn):
    base = live_server.url
    mail.outbox.clear()

    # The maintainer tries to set @champion from the model page: the control opens the request form instead.
    sign_in(page, base, "mia")
    page.goto(f"{base}/models/churn/")
    expect(page.locator("#aliases .protected-note")).to_contain_text("@champion")
    page.get_by_label("Alias").fill("champion")
    page.locator("#aliases").get_by_label("Version").select_option("2")
    page.get_by_role("button", name="Set alias").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/2/promote/?target=alias:champion")
    expect(page.get_by_role("status")).to_contain_text("@champion is protected")
    expect(page.get_by_label("Target")).to_have_value("alias:champion")
    expect(page.locator("#reviewers")).to_contain_text("rita")
    expect(page.locator(".gate-preview")).to_contain_text("Model card complete")
    page.get_by_label("Justification").fill("AUC 0.965 → 0.986 on the March data.")
    page.get_by_role("button", name="Open request").click()
    expect(page).to_have_url(re.compile(r"/promotions/\d+/$"))
    request_url = page.url
    assert Alias.objects.get(name="champion").version.number == 1
    assert {m.to[0] for m in mail.outbox} >= {"rita@example.com", "ravi@example.com"}

    # The evidence says which way each metric moved, in words and not colour alone.
    expect(page.locator('tr[data-metric="auc"] .verdict')).to_have_text("▲ better")
    expect(page.locator('tr[data-metric="loss"] .verdict')).to_have_text("▼ worse")
    expect(page.locator("#metrics .js-plotly-plot")).to_have_count(2)

    # Each reviewer sees the badge, opens the request from the inbox and approves.
    sign_in(page, base, "rita")
    reviews = page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews")
    expect(reviews.locator(".nav-badge")).to_contain_text("1")
    reviews.click()
    page.locator("#waiting .inbox-row a").first.click()
    expect(page).to_have_url(request_url)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Approval recorded (1 of 2).")

    sign_in(page, base, "ravi")
    page.goto(request_url)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Executed: version 2 now holds @champion.")
    assert Alias.objects.get(name="champion").version.number == 2
    assert any(m.to == ["mia@example.com"] and "executed" in m.subject for m in mail.outbox)
    page.goto(f"{base}/models/churn/")
    expect(page.locator("#aliases")).to_contain_text("Version 2")


def test_a_reviewer_who_requested_cannot_approve(page: Page, live_server, churn):
    base = live_server.url
    sign_in(page, base, "rita")
    page.goto(f"{base}/models/churn/versions/2/")
    page.get_by_role("link", name="Request promotion").click()
    page.get_by_label("Justification").fill("I would like this one out.")
    page.get_by_role("button", name="Open request").click()
    expect(page).to_have_url(re.compile(r"/promotions/\d+/$"))
    expect(page.locator(".refusal")).to_contain_text("four-eyes")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(page.locator("#waiting .inbox-row")).to_have_count(0)
    expect(page.locator("#mine")).to_contain_text("churn v2")


def test_compliance_approves_a_card_from_the_inbox_and_exports_its_pdf(page: Page, live_server, churn, tmp_path):
    base = live_server.url
    card = fill(card_services.card_create(version=churn["v2"], actor=churn["erin"]), churn["erin"])

    # The engineer sends it for review from the card page.
    sign_in(page, base, "erin")
    page.goto(f"{base}/models/churn/versions/2/card/")
    expect(page.locator("#card-reviewers")).to_contain_text("carla")
    page.get_by_role("button", name="Send for review").click()
    expect(page.get_by_test_id("card-state")).to_have_text("In review")

    # The compliance officer finds it in the inbox and approves it; promotions stay out of her reach.
    sign_in(page, base, "carla")
    reviews = page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews")
    expect(reviews.locator(".nav-badge")).to_contain_text("1")
    reviews.click()
    expect(page.locator("#waiting .inbox-row")).to_have_count(0)
    page.locator("#cards-waiting .card-row a").first.click()
    expect(page).to_have_url(f"{base}/models/churn/versions/2/card/")
    page.get_by_label("Comment").fill("Intended use and limits are clear.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("card-state")).to_have_text("Approved")
    card.refresh_from_db()
    assert card.state == CardState.APPROVED and card.approved_by == churn["carla"]
    assert ModelCard.objects.get(pk=card.pk).approved_by.username == "carla"

    with page.expect_download() as download_info:
        page.get_by_test_id("export-pdf").click()
    download = download_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert download.suggested_filename == "churn-v2-model-card.pdf" and data.startswith(b"%PDF")
    from pypdf import PdfReader

    assert "carla" in "".join(p.extract_text() for p in PdfReader(path).pages)
