"""Narrow screens and accessibility in Chromium: at 390 px nothing scrolls sideways and the navigation
collapses; axe-core finds no serious or critical violation on the governance pages people work in."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from governance import services as governance_services
from governance.cards import services as card_services
from governance.erasure import services as erasure_services
from tests.browser.conftest import assert_no_serious_axe_violations
from tests.browser.test_governance_browser import PASSWORD, sign_in
from tests.governance.conftest import SUBJECT, world  # noqa: F401 - the shared erasure fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def story(world, make_user):  # noqa: F811
    """The erasure world plus a reviewer, an open promotion request, a model card and an erasure request."""
    from registry import access
    from registry.models import Role

    model, owner, officer = world["model"], world["owner"], world["officer"]
    officer.is_staff = True  # sees every page, including the audit of every model
    officer.set_password(PASSWORD)
    officer.save()
    reviewer = make_user("rita", password=PASSWORD)
    access.role_grant(model=model, actor=owner, user=reviewer, role=Role.REVIEWER)
    versions = world["versions"]
    from registry import services as registry_services

    registry_services.alias_set(model=model, alias="champion", version=versions[0], actor=owner)
    governance_services.protected_target_set(model=model, actor=owner, kind="alias", name="champion",
                                             approvals_required=2)
    request = governance_services.promotion_request_create(
        version=versions[2], actor=owner, kind="alias", target="champion",
        justification="Better AUC on the March data; card and datasets attached.")
    card_services.card_create(version=versions[2], actor=owner)
    erasure = erasure_services.erasure_request_create(actor=officer, identifier=SUBJECT)
    return {"request": request, "erasure": erasure, "reviewer": reviewer, "officer": officer}


def _pages(story) -> list[str]:
    return ["/", "/reviews/", f"/promotions/{story['request'].pk}/", "/models/churn/",
            "/models/churn/versions/3/", "/models/churn/versions/3/card/", "/models/churn/history/", "/audit/",
            "/erasure/", f"/erasure/{story['erasure'].pk}/", "/deployments/", "/tokens/"]


def test_main_pages_fit_a_390px_screen(page: Page, live_server, story):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, "officer")
    for path in _pages(story):
        page.goto(live_server.url + path)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} is {width[0]} px wide on a {width[1]} px screen"

    # The navigation collapses behind Menu and opens on demand; the user menu comes with it.
    page.goto(live_server.url + "/audit/")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Deployments")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    box = nav.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # A wide table scrolls inside its card, not the page, and a keyboard can reach it.
    table_card = page.locator(".table-card").first
    sizes = table_card.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert sizes[0] > sizes[1]
    expect(table_card).to_have_attribute("tabindex", "0")


def test_a_wide_screen_keeps_the_full_navigation(page: Page, live_server, story):
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url, "officer")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit")).to_be_visible()


@pytest.mark.parametrize("width", [1280, 390])
def test_governance_pages_pass_axe(page: Page, live_server, story, width):
    page.set_viewport_size({"width": width, "height": 900})
    base = live_server.url
    sign_in(page, base, "rita")
    for path in ("/reviews/", f"/promotions/{story['request'].pk}/", "/models/churn/versions/3/card/"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert_no_serious_axe_violations(page)
    sign_in(page, base, "owner")
    page.goto(base + "/models/churn/versions/4/promote/")  # the promotion request form
    expect(page.get_by_label("Justification")).to_be_visible()
    assert_no_serious_axe_violations(page)
    sign_in(page, base, "officer")
    for path in ("/audit/", "/erasure/", f"/erasure/{story['erasure'].pk}/"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        if path == "/audit/":
            page.locator("details.audit-details summary").first.click()  # the expanded details too
        assert_no_serious_axe_violations(page)


def test_only_the_irreversible_button_of_a_form_asks_first(page: Page, live_server, story, make_user):
    from governance.models import PromotionRequest
    from registry import access
    from registry.models import Role

    second = make_user("ravi", password=PASSWORD)
    access.role_grant(model=story["request"].model, actor=story["request"].model.owner, user=second,
                      role=Role.REVIEWER)
    base = live_server.url
    url = f"{base}/promotions/{story['request'].pk}/"
    sign_in(page, base, "rita")
    page.goto(url)
    page.get_by_label("Comment").fill("Not on this data.")
    page.get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("closes for good")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert PromotionRequest.objects.get(pk=story["request"].pk).state == "open"

    page.get_by_role("button", name="Approve").click()  # approving asks nothing
    expect(page.locator(".outcome")).to_contain_text("Approval recorded (1 of 2)")

    sign_in(page, base, "ravi")
    page.goto(url)
    page.get_by_label("Comment").fill("The card is still a draft.")
    page.get_by_role("button", name="Reject").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Reject request").click()
    expect(page.locator(".promotion-state")).to_have_text("Rejected")
    assert PromotionRequest.objects.get(pk=story["request"].pk).state == "rejected"
