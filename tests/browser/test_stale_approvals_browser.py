"""Stale approvals in Chromium: a reviewer's approval goes stale when the candidate's metrics change, the request
page marks it and shows what changed, and the reviewer approves again on the current evidence."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from governance import services as governance_services
from registry import services
from registry.models import Alias
from tests.browser.conftest import assert_no_serious_axe_violations
from tests.browser.test_governance_browser import sign_in
from tests.browser.test_review_flow_browser import churn  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_sees_the_stale_marker_and_the_diff_and_approves_again(page: Page, live_server, churn):  # noqa: F811
    base = live_server.url
    request = governance_services.promotion_request_create(
        version=churn["v2"], actor=churn["erin"], kind="alias", target="champion",
        justification="AUC 0.965 → 0.986 on the March data.")
    url = f"{base}/promotions/{request.pk}/"

    sign_in(page, base, "rita")
    page.goto(url)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Approval recorded (1 of 2).")

    # The engineer corrects the candidate's metrics: committed, the change reaches the request at once.
    services.version_update(version=churn["v2"], actor=churn["erin"], metrics={"auc": 0.975, "loss": 0.34})

    page.goto(url)
    expect(page.locator(".stale-notice")).to_contain_text("candidate metric auc changed: 0.986 → 0.975")
    expect(page.locator("#decision-panel .stale-marker")).to_have_text("Stale")
    expect(page.locator("#decision-panel .stale-reason")).to_contain_text("candidate metric auc changed")
    row = page.locator('#evidence .evidence-approval[data-reviewer="rita"] tr', has_text="candidate v2 metric auc")
    expect(row).to_contain_text("0.986")
    expect(row).to_contain_text("→ 0.975")
    expect(page.locator(".promotion-state")).to_have_text("Open")
    assert_no_serious_axe_violations(page)

    # Back in rita's inbox; she approves again, on what holds now.
    reviews = page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews")
    expect(reviews.locator(".nav-badge")).to_contain_text("1")
    page.get_by_label("Comment").fill("0.975 still beats the champion.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Approval recorded (1 of 2).")
    expect(page.locator(".stale-notice")).to_have_count(1)  # one fresh approval of two: still back in review

    sign_in(page, base, "ravi")
    page.goto(url)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".outcome")).to_have_text("Executed: version 2 now holds @champion.")
    expect(page.locator(".stale-notice")).to_have_count(0)
    assert Alias.objects.get(name="champion").version.number == 2
