"""The version page's tabs in Chromium: click through every tab (the address follows, a refresh keeps the tab,
Back returns to the one before), move between tabs with the keyboard, read where a version is deployed with a live
canary's two shares, and fit a 390 px screen with the tab bar scrolling inside itself and axe finding nothing
serious on any tab."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from deployments import services as deployment_services
from governance.cards import services as card_services
from registry import services
from tests.browser.conftest import assert_no_serious_axe_violations
from tests.browser.test_governance_browser import sign_in  # clears the cookies first
from tests.conftest import spooled
from tests.deployments import conftest as deployment_fixtures
from tests.deployments.conftest import iris_onnx

# The deployment fixtures live in tests/deployments/conftest.py; bind them here so this module can use them.
_fresh_gateway = deployment_fixtures._fresh_gateway
servable_version = deployment_fixtures.servable_version
environment = deployment_fixtures.environment
endpoint = deployment_fixtures.endpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# label: (address under the version's page, what the tab shows)
TABS = {
    "Overview": ("", "#provenance", "s3://bucket/runs/7/model"),
    "Artifacts": ("artifacts/", "#artifacts", "notes.txt"),
    "Pipeline": ("pipeline/", "#pipeline", "Scan:"),
    "Lineage": ("lineage/", "#lineage", "Open full lineage"),
    "Card": ("model-card/", "#card-summary", "Retention offers for existing customers."),
    "Deployments": ("deployments/", "#version-rollouts", "has not taken part in a rollout"),
    "History": ("history/", "#version-history", "Version stage changed"),
}


@pytest.fixture
def churn(make_user):
    alice = make_user("alice")
    model = services.model_create(actor=alice, name="churn")
    version = services.version_create(
        model=model, actor=alice, files=[("notes.txt", spooled(b"hello")), ("conf/params.json", spooled(b"{}"))],
        source_uri="s3://bucket/runs/7/model", code_commit="abc1234",
        datasets=[{"name": "customers", "digest": "d1", "role": "train"}])
    card = card_services.card_create(version=version, actor=alice)
    card_services.card_update(card=card, actor=alice, section="intended_use",
                              values={"primary_uses": "Retention offers for existing customers."})
    services.version_transition_stage(version=version, actor=alice, stage="Staging")
    return model


def _tab(page: Page, label: str):
    return page.get_by_role("tablist").get_by_role("tab", name=label, exact=True)


def _shows(page: Page, base: str, label: str) -> None:
    address, selector, text = TABS[label]
    expect(page).to_have_url(f"{base}/models/churn/versions/1/{address}")
    expect(_tab(page, label)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", selected=True)).to_have_count(1)
    expect(page.get_by_role("tabpanel")).to_have_attribute("aria-labelledby", _tab(page, label).get_attribute("id"))
    expect(page.locator(selector)).to_contain_text(text)


def test_every_version_tab_has_its_address_survives_a_refresh_and_goes_back(page: Page, live_server, churn):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/models/churn/versions/1/")
    _shows(page, base, "Overview")
    previous = "Overview"
    for label in TABS:
        if label == "Overview":
            continue
        page.evaluate("window.__samePage = true")  # gone if the click loads a whole new page instead of a tab
        _tab(page, label).click()
        _shows(page, base, label)
        expect(page).to_have_title(re.compile(rf"^churn v1 · {label} · Stratum$"))
        assert page.evaluate("window.__samePage") is True, f"{label} reloaded the page"
        if label == "Lineage":  # the graph is drawn in the swapped-in tab
            expect(page.locator("#lineage .js-plotly-plot .main-svg").first).to_be_visible()
            expect(page.locator("#lineage")).to_contain_text("3 nodes, 2 edges")
        page.reload()  # a refresh keeps the tab: the address is the tab's own page
        _shows(page, base, label)
        page.go_back()  # Back returns to the tab before, then forward again
        _shows(page, base, previous)
        page.go_forward()
        _shows(page, base, label)
        previous = label

    # The Artifacts tab downloads; the Card tab links to the full card.
    _tab(page, "Artifacts").click()
    expect(page.locator("#artifacts tr.tree-file", has_text="notes.txt").get_by_role("link", name="Download")) \
        .to_have_attribute("href", "/api/v1/models/churn/versions/1/artifacts/notes.txt")
    _tab(page, "Card").click()
    page.locator("#card-summary").get_by_role("link", name="Open the model card").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/1/card/")


def test_the_keyboard_moves_between_tabs_and_opens_one(page: Page, live_server, churn):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/models/churn/versions/1/")
    overview = _tab(page, "Overview")
    expect(overview).to_have_attribute("tabindex", "0")
    expect(_tab(page, "Artifacts")).to_have_attribute("tabindex", "-1")  # one tab stop for the whole bar
    overview.focus()
    page.keyboard.press("ArrowRight")
    expect(_tab(page, "Artifacts")).to_be_focused()
    page.keyboard.press("End")
    expect(_tab(page, "History")).to_be_focused()
    page.keyboard.press("ArrowRight")  # wraps round
    expect(overview).to_be_focused()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(_tab(page, "Deployments")).to_be_focused()
    page.keyboard.press("Enter")
    _shows(page, base, "Deployments")
    expect(_tab(page, "Deployments")).to_be_focused()  # the focus stays on the tab after the swap
    page.keyboard.press("Home")
    page.keyboard.press(" ")
    _shows(page, base, "Overview")


def test_deployed_at_shows_a_live_canary_with_its_two_shares(page: Page, live_server, owner, registered_model,
                                                           endpoint, servable_version):
    servable_version(registered_model)
    servable_version(registered_model, iris_onnx("different"))
    deployment_services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    base = live_server.url
    sign_in(page, base, "owner")
    page.goto(f"{base}/models/churn/versions/2/")
    panel = page.locator("#deployed-at")
    expect(panel).to_contain_text("Not deployed")

    deployment_services.deployment_start(actor=owner, endpoint=endpoint, strategy="canary", version=2,
                                         steps=[{"set_weight": 20}, {"pause": {}}])
    page.reload()
    row = panel.locator("tr.deployed-at-row", has_text="churn-staging")
    expect(row).to_contain_text("staging")
    expect(row.locator(".share")).to_have_text("20%")
    expect(row.locator(".deployed-share")).to_contain_text("canary")
    expect(row.locator(".traffic-split")).to_have_text(re.compile(r"v1 80%\s*·\s*v2 20% \(canary\)"))
    expect(row.locator(".split-this")).to_have_text("v2 20% (canary)")

    # The stable version's page shows the other share of the same split.
    page.goto(f"{base}/models/churn/versions/1/")
    expect(page.locator("#deployed-at tr.deployed-at-row .share")).to_have_text("80%")

    # The Deployments tab has the panel and the rollout; its endpoint link opens the dashboard.
    page.goto(f"{base}/models/churn/versions/2/")
    _tab(page, "Deployments").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/2/deployments/")
    expect(page.locator("#version-rollouts tr.rollout-row").first).to_contain_text("v1 → v2")
    page.locator("#deployed-at").get_by_role("link", name="churn-staging").click()
    expect(page).to_have_url(f"{base}/deployments/churn-staging/")
    expect(page.locator("#routing")).to_contain_text("v2 20%")


@pytest.mark.parametrize("width", [390, 1280])
def test_version_tabs_fit_a_narrow_screen_and_pass_axe(page: Page, live_server, churn, width):
    page.set_viewport_size({"width": width, "height": 844})
    base = live_server.url
    sign_in(page, base, "alice")
    for label, (address, selector, _) in TABS.items():
        page.goto(f"{base}/models/churn/versions/1/{address}")
        expect(page.locator(selector)).to_be_visible()
        page.wait_for_load_state("networkidle")
        sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert sizes[0] <= sizes[1], f"{label}: {sizes[0]} px wide on a {sizes[1]} px screen"
        # the selected tab is scrolled into view inside the bar
        box, bar = _tab(page, label).bounding_box(), page.get_by_role("tablist").bounding_box()
        assert box and bar and box["x"] >= bar["x"] - 1 and box["x"] + box["width"] <= bar["x"] + bar["width"] + 1
        assert_no_serious_axe_violations(page)
    if width == 390:  # the bar scrolls sideways inside itself rather than widening the page
        bar = page.get_by_role("tablist")
        assert bar.evaluate("el => el.scrollWidth > el.clientWidth")
        assert bar.evaluate("el => getComputedStyle(el).overflowX") == "auto"
