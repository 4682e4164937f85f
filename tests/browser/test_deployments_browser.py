"""Click through a canary in Chromium: deploy from the step editor, watch it, promote a step, roll back in one
confirmed action."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from deployments import services, serving
from deployments.models import Deployment
from tests.deployments import conftest as deployment_fixtures
from tests.deployments.conftest import iris_onnx

# The deployment fixtures live in tests/deployments/conftest.py; bind them here so this module can use them.
_fresh_gateway = deployment_fixtures._fresh_gateway
servable_version = deployment_fixtures.servable_version
environment = deployment_fixtures.environment
endpoint = deployment_fixtures.endpoint
serving_token = deployment_fixtures.serving_token
predict = deployment_fixtures.predict

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-correct-horse-42"
STEPS = [{"set_weight": 20}, {"pause": {}}, {"set_weight": 60}, {"pause": {}}]


def sign_in(page: Page, base: str, username: str) -> None:
    """Sign in through the login form."""
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")


def test_canary_promote_and_roll_back_in_the_browser(page: Page, live_server, owner, registered_model, endpoint,
                                                     servable_version, predict):
    servable_version(registered_model)
    servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=1)
    for _ in range(5):  # some traffic for the charts, written to the statistics at once
        assert predict("churn-staging", {"rows": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
    serving.drain()
    base = live_server.url

    # The platform engineer (the model's owner) finds the endpoint from the navigation.
    sign_in(page, base, "owner")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    page.get_by_role("link", name="churn-staging").click()
    expect(page).to_have_url(f"{base}/deployments/churn-staging/")
    expect(page.locator("#routing")).to_contain_text("v1 100%")
    for chart in ("split", "requests", "errors", "latency"):
        expect(page.locator(f"#chart-{chart} .js-plotly-plot")).to_have_count(1)

    # A canary through the deploy form: only the canary's settings show, its steps in the step editor.
    page.get_by_role("link", name="Deploy a version").click()
    form = page.locator("form.deploy-form")
    page.get_by_label("Strategy").select_option("shadow")
    expect(form.get_by_role("group", name="Shadow", exact=True)).to_be_visible()
    expect(form.get_by_role("group", name="Canary steps", exact=True)).to_be_hidden()
    page.get_by_label("Strategy").select_option("canary")
    expect(form.get_by_role("group", name="Canary steps", exact=True)).to_be_visible()
    for hidden in ("shadow", "blue_green", "ab"):
        fieldset = form.locator(f'fieldset[data-strategies="{hidden}"]')
        expect(fieldset).to_have_count(1)
        expect(fieldset).to_be_hidden()
    page.get_by_label("Version", exact=True).select_option("2")

    # The default six steps become 20%, pause until promoted, 60%, pause until promoted.
    rows = page.locator(".step-row")
    expect(rows).to_have_count(6)
    for _ in range(3):
        rows.nth(3).get_by_role("button", name="Remove").click()
    expect(rows).to_have_count(3)
    rows.nth(0).get_by_label("Weight %").fill("20")
    expect(rows.nth(1).get_by_label("Weight %")).to_be_hidden()  # a pause row shows only its seconds
    rows.nth(1).get_by_label("Pause seconds").fill("")
    rows.nth(2).get_by_label("Step").select_option("weight")
    rows.nth(2).get_by_label("Weight %").fill("60")
    page.get_by_role("button", name="Add step").click()
    expect(rows).to_have_count(4)
    expect(page.locator('input[name="steps-TOTAL_FORMS"]')).to_have_value("4")
    rows.nth(3).get_by_label("Step").select_option("pause")
    expect(rows.nth(3).get_by_label("Pause seconds")).to_have_attribute("name", "steps-3-pause_seconds")
    page.get_by_role("button", name="Start rollout").click()
    expect(page).to_have_url(f"{base}/deployments/churn-staging/")
    deployment = Deployment.objects.get(strategy="canary")
    assert deployment.steps == STEPS
    expect(page.locator(".rollout-phase")).to_have_text(re.compile("Progressing|Paused"))
    current = page.locator('.step-list li[aria-current="step"]')
    expect(current).to_have_count(1)
    expect(current).to_have_text("Pause until promoted")  # step index 1: after "Set weight to 20%"
    expect(page.locator(".step-list li").nth(1)).to_have_attribute("aria-current", "step")
    expect(page.locator(".candidate-weight")).to_have_text("20%")
    expect(page.locator("#routing")).to_contain_text("v1 80%")
    expect(page.locator("#routing")).to_contain_text("v2 20%")

    # Watched: the charts follow the canary from its start, in 10-second points, refreshed by the poll.
    expect(page.locator("#traffic-title")).to_have_text(f"Traffic since deployment #{deployment.pk} started")
    expect(page.locator(".chart-window")).to_contain_text("one point per 10 s")
    for _ in range(10):
        assert predict("churn-staging", {"rows": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
    serving.drain()
    expect(page.locator("#chart-latency .js-plotly-plot")).to_have_count(1, timeout=15_000)

    # Promote: the next step sets 60%.
    page.get_by_role("button", name="Promote", exact=True).click()
    expect(page.locator(".candidate-weight")).to_have_text("60%")
    expect(page.locator("#routing")).to_contain_text("v2 60%")
    expect(page.locator('.step-list li[aria-current="step"]')).to_have_text("Pause until promoted")
    expect(page.locator(".step-list li").nth(3)).to_have_attribute("aria-current", "step")

    # The monitor looks at the rollout as soon as the promotion commits: an open pause waits for a person.
    expect(page.locator(".rollout-phase")).to_have_text("Paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()

    # Roll back, with a reason, asks first; Cancel keeps everything as it was.
    page.get_by_label("Reason for rolling back").fill("v2 disagrees with v1 on class 2")
    page.get_by_role("button", name="Roll back").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Every request goes back to the last good version")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".rollout-phase")).to_have_text("Paused")
    # Once confirmed, the stable version serves everything again, and the page says who rolled back and why.
    page.get_by_role("button", name="Roll back").click()
    dialog.get_by_role("button", name="Roll back").click()
    expect(page.locator(".rollout-phase")).to_have_text("Rolled back by owner: v2 disagrees with v1 on class 2")
    expect(page.locator(".history-row").first.locator(".history-phase")).to_have_text(
        "Rolled back by owner: v2 disagrees with v1 on class 2")
    expect(page.locator("#routing")).to_have_text(re.compile(r"^\s*v1 100%\s*$"))
    expect(page.get_by_role("button", name="Roll back")).to_have_count(0)
    endpoint.refresh_from_db()
    assert [(r["number"], r["weight"]) for r in endpoint.routing["routes"]] == [(1, 100)]

    # The live part refreshes itself (htmx, every 5 s): a deployment made elsewhere shows without a reload.
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=2)
    expect(page.locator("#routing")).to_have_text(re.compile(r"^\s*v2 100%\s*$"))
