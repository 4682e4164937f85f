"""Click through a promotion in Chromium: request, four eyes, two approvals, the alias moves, the audit verifies."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from governance import services as governance_services
from registry import access, services
from registry.models import Alias, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-correct-horse-42"


def sign_in(page: Page, base: str, username: str) -> None:
    """Sign in through the login form."""
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")


def test_promotion_flow_in_the_browser(page: Page, live_server, make_user):
    owner = make_user("olivia")
    people = {name: make_user(name) for name in ("erin", "rita", "ravi")}
    model = services.model_create(actor=owner, name="churn")
    access.role_grant(model=model, actor=owner, user=people["erin"], role=Role.CONTRIBUTOR)
    for name in ("rita", "ravi"):
        access.role_grant(model=model, actor=owner, user=people[name], role=Role.REVIEWER)
    v1 = services.version_create(model=model, actor=owner, metrics={"auc": 0.81})
    services.version_create(model=model, actor=people["erin"], metrics={"auc": 0.88}, params={"depth": "6"})
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    governance_services.protected_target_set(model=model, actor=owner, kind="alias", name="champion",
                                             approvals_required=2, required_gates=["metrics"])
    base = live_server.url

    # The engineer opens a request from the version page.
    sign_in(page, base, "erin")
    page.goto(f"{base}/models/churn/versions/2/")
    page.get_by_role("link", name="Request promotion").click()
    page.get_by_label("Target").select_option("alias:champion")
    page.get_by_label("Justification").fill("AUC up from 0.81 to 0.88 on the March data.")
    page.get_by_role("button", name="Open request").click()
    expect(page).to_have_url(re.compile(r"/promotions/\d+/$"))
    request_url = page.url
    expect(page.get_by_text("AUC up from 0.81 to 0.88")).to_be_visible()
    expect(page.locator("#metrics .js-plotly-plot")).to_have_count(1)

    # The requester cannot approve their own request.
    expect(page.locator(".refusal")).to_contain_text("four-eyes")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    # Two reviewers approve in the browser; the outcome shows at once (htmx), and the alias moves.
    sign_in(page, base, "rita")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    page.locator("#waiting .inbox-row a").first.click()
    expect(page).to_have_url(request_url)
    page.get_by_label("Comment").fill("Metrics hold up.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Approval recorded (1 of 2).")
    assert Alias.objects.get(name="champion").version.number == 1

    sign_in(page, base, "ravi")
    page.goto(request_url)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Executed: version 2 now holds @champion.")
    expect(page.locator(".promotion-state")).to_have_text("Executed")
    assert Alias.objects.get(name="champion").version.number == 2

    # The audit page shows every step and verifies the chain.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page.locator("#verdict")).to_contain_text("Verified.")
    actions = page.locator(".audit-row .audit-code")
    for action in ("promotion.requested", "promotion.approved", "model_version_alias.set", "promotion.executed"):
        expect(actions.filter(has_text=action).first).to_be_visible()
    expect(actions.filter(has_text="promotion.approved")).to_have_count(2)
    page.get_by_label("Action").select_option("promotion.executed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".audit-row")).to_have_count(1)
    expect(page.locator(".audit-row")).to_contain_text("ravi")
