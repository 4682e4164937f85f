"""Under the Content-Security-Policy, the main pages load in Chromium with no violation and their charts draw."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from deployments import services as deployment_services
from governance.cards import services as card_services
from governance.erasure import services as erasure_services
from tests.browser.test_governance_browser import PASSWORD, sign_in
from tests.deployments import conftest as deployment_fixtures
from tests.governance.conftest import SUBJECT, world  # noqa: F401 - the shared lineage and erasure fixture

environment = deployment_fixtures.environment
endpoint = deployment_fixtures.endpoint
servable_version = deployment_fixtures.servable_version
_fresh_gateway = deployment_fixtures._fresh_gateway

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch_console(page: Page) -> list[str]:
    """Collect console errors and uncaught exceptions (Chromium logs each CSP violation as a console error)."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    return problems


def test_main_pages_load_without_csp_violations_and_draw_their_charts(
        page: Page, live_server, world, endpoint, servable_version):  # noqa: F811
    owner, model = world["owner"], world["model"]
    owner.set_password(PASSWORD)
    owner.is_staff = True
    owner.save()
    deployment_services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct",
                                         version=servable_version(model).number)
    card_services.card_create(version=world["versions"][2], actor=owner)
    erasure = erasure_services.erasure_request_create(actor=world["officer"], identifier=SUBJECT)
    node = world["d1"]
    base = live_server.url
    problems = watch_console(page)

    sign_in(page, base, "owner")
    expect(page.locator(".model-row")).to_have_count(1)

    page.goto(f"{base}/models/churn/")  # the champion/trends panel arrives through htmx
    page.goto(f"{base}/models/churn/versions/3/")
    page.get_by_role("tab", name="Lineage").click()
    expect(page.locator(".lineage-graph .js-plotly-plot")).to_have_count(1)  # drawn after an htmx swap
    expect(page.locator(".plot-container")).not_to_have_count(0)
    expect(page.locator(".modebar-container")).not_to_have_count(0)
    # plotly.js's own rules apply although it may not inject them (static/css/plotly.css)
    assert page.locator(".modebar").first.evaluate("e => getComputedStyle(e).position") == "absolute"

    page.goto(f"{base}/lineage/nodes/{node.pk}/")
    expect(page.locator(".js-plotly-plot")).to_have_count(1)

    page.goto(f"{base}/deployments/churn-staging/")
    expect(page.locator("#chart-split .js-plotly-plot")).to_have_count(1)
    assert problems == [], "\n".join(problems)

    page.goto(f"{base}/deployments/churn-staging/deploy")  # strategy fieldsets and the step editor: static JS only
    page.get_by_label("Strategy").select_option("blue_green")
    expect(page.locator('fieldset[data-strategies="canary"]')).to_be_hidden()
    page.get_by_label("Strategy").select_option("canary")
    page.get_by_role("button", name="Add step").click()
    expect(page.locator(".step-row")).to_have_count(7)
    assert problems == [], "\n".join(problems)

    page.goto(f"{base}/compare/?versions=churn/1,churn/2")
    page.locator(".compare-picker summary").click()
    picker = page.locator("#picker-model")
    picker.select_option("churn")  # submits its form by itself (static JS; no inline handler)
    expect(page).to_have_url(f"{base}/compare/?model=churn&versions=churn%2F1%2Cchurn%2F2")

    page.goto(f"{base}/models/churn/versions/3/card/")
    meter = page.locator(".meter").first
    expect(meter.locator("span")).to_have_attribute("style", f"width: {meter.get_attribute('aria-valuenow')}%;")

    page.goto(f"{base}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Stratum API")

    page.context.clear_cookies()
    world["officer"].set_password(PASSWORD)
    world["officer"].save()
    sign_in(page, base, "officer")
    page.goto(f"{base}/erasure/{erasure.pk}/")
    expect(page.locator("#impact .js-plotly-plot")).to_have_count(1)

    assert problems == [], "\n".join(problems)
