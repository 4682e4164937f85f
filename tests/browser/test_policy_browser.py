"""Editing a promotion policy in Chromium: a maintainer proposes a change and sees the diff, cannot approve it
alone, a second maintainer approves it, and the new version is in force."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from governance import services as governance_services
from governance.models import PolicyState, PromotionPolicyVersion
from registry import access, services
from registry.models import Role
from tests.browser.conftest import assert_no_serious_axe_violations
from tests.browser.test_governance_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def churn(make_user):
    """churn with a protected @champion (settings: two approvals); mia and max maintain, rita and ravi review."""
    owner = make_user("olivia")
    people = {name: make_user(name) for name in ("mia", "max", "rita", "ravi")}
    model = services.model_create(actor=owner, name="churn")
    for name in ("mia", "max"):
        access.role_grant(model=model, actor=owner, user=people[name], role=Role.MAINTAINER)
    for name in ("rita", "ravi"):
        access.role_grant(model=model, actor=owner, user=people[name], role=Role.REVIEWER)
    v1 = services.version_create(model=model, actor=owner, metrics={"auc": 0.965, "loss": 0.30})
    services.alias_set(model=model, alias="champion", version=v1, actor=owner)
    governance_services.protected_target_set(model=model, actor=owner, kind="alias", name="champion",
                                             approvals_required=2, required_gates=["metrics"])
    return {"model": model, **people}


def test_a_policy_change_is_proposed_diffed_and_approved_by_a_second_maintainer(page: Page, live_server, churn):
    base = live_server.url
    sign_in(page, base, "mia")
    page.goto(f"{base}/models/churn/protection/")
    page.locator('#policies tr[data-scope="alias:champion"]').get_by_role("link", name="View and edit").click()
    expect(page).to_have_url(f"{base}/models/churn/policies/alias:champion/")
    expect(page.locator("#policy-active")).to_contain_text("version 1")
    editor = page.get_by_label("Policy (YAML or JSON)")
    source = editor.input_value()
    assert "quorum: 2" in source

    # A typo is answered on the form, naming the field; nothing is proposed.
    editor.fill(source.replace("quorum: 2", "quorum: 7"))
    page.get_by_role("button", name="Propose version").click()
    expect(page.locator(".field-error")).to_contain_text("/quorum: A quorum of 7 is more than the 5 people")
    assert not PromotionPolicyVersion.objects.filter(state=PolicyState.PROPOSED).exists()

    editor = page.get_by_label("Policy (YAML or JSON)")
    editor.fill(source.replace("roles: {}", "roles:\n  reviewer: 2"))
    page.get_by_label("Why this change").fill("Two reviewers, not any two people.")
    page.get_by_role("button", name="Propose version").click()
    expect(page.get_by_role("status")).to_contain_text("takes effect once another maintainer approves it")
    diff = page.locator("#policy-pending .policy-diff")
    expect(diff.locator(".diff-add")).to_contain_text(["+  reviewer: 2"])
    expect(diff.locator(".diff-del")).to_contain_text(["-roles: {}"])
    expect(page.locator("#policy-decision")).to_contain_text("another maintainer must approve it")
    expect(page.get_by_role("button", name="Approve version 2")).to_have_count(0)
    assert_no_serious_axe_violations(page)

    # The second maintainer sees the same diff and approves: version 2 is in force, version 1 superseded.
    sign_in(page, base, "max")
    page.goto(f"{base}/models/churn/policies/alias:champion/")
    expect(page.locator("#policy-pending .diff-add")).to_contain_text(["+  reviewer: 2"])
    page.get_by_label("Comment").fill("Agreed.")
    page.get_by_role("button", name="Approve version 2").click()
    expect(page.get_by_role("status")).to_contain_text("Version 2 is now active")
    expect(page.locator("#policy-active")).to_contain_text("version 2")
    expect(page.locator("#policy-active")).to_contain_text("approved by max")
    expect(page.locator('#policy-history tr[data-version="1"]')).to_contain_text("Superseded")
    assert PromotionPolicyVersion.objects.get(number=2).state == PolicyState.ACTIVE
