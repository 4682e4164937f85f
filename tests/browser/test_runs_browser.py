"""Training code logs a run with the stock mlflow client; an engineer walks experiments, the run and its version in
Chromium: experiment list -> experiment (filtered) -> run page with a metric-history chart -> version -> back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_pages_browser import sign_in
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_run_logged_with_the_stock_client_is_browsable(page: Page, live_server, make_user, mlflow_env):  # noqa: F811
    import mlflow
    import numpy as np

    alice = make_user("alice")
    client = mlflow_env(alice)
    mlflow.set_experiment("churn-training")
    with mlflow.start_run(run_name="deep-trees") as run:
        run_id = run.info.run_id
        mlflow.log_params({"max_depth": 6, "penalty": "l2"})
        for step, auc in enumerate([0.61, 0.74, 0.83, 0.88]):
            mlflow.log_metric("auc", auc, step=step)
        mlflow.log_metric("loss", 0.21)
        mlflow.log_input(mlflow.data.from_numpy(np.arange(12).reshape(4, 3), name="customers-2024"),
                         context="training")
        mlflow.log_text("depth 6 beats depth 4", "notes/summary.txt")
        mlflow.log_dict({"flavor": "demo"}, "model/config.json")
    with mlflow.start_run(run_name="shallow-trees"):
        mlflow.log_param("max_depth", 2)
        mlflow.log_metric("auc", 0.7, step=0)
    client.create_registered_model("churn")
    version = client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)
    assert version.version == "1"

    base = live_server.url
    problems: list[str] = []  # Chromium logs each Content-Security-Policy violation as a console error
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    sign_in(page, base, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    row = page.locator("tr.experiment-row", has_text="churn-training")
    expect(row.locator("td.num")).to_have_text("2")
    row.get_by_role("link", name="churn-training").click()

    runs = page.locator("#run-results")
    expect(runs.locator("tr.run-row")).to_have_count(2)
    page.get_by_label("Filter runs").fill("metrics.auc > 0.8 and params.max_depth = '6'")
    page.get_by_role("button", name="Filter").click()
    expect(runs.locator("tr.run-row")).to_have_count(1)
    expect(runs).to_contain_text("1 run matches")
    expect(page).to_have_url(re.compile(r"filter=metrics\.auc"))
    page.get_by_label("Filter runs").fill("metrics.auc >")
    page.get_by_role("button", name="Filter").click()
    expect(runs.locator(".alert-error")).to_contain_text("That filter did not work.")
    page.get_by_label("Filter runs").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(runs.locator("tr.run-row")).to_have_count(2)
    runs.get_by_role("link", name="deep-trees").click()

    expect(page).to_have_url(f"{base}/runs/{run_id}/")
    expect(page.get_by_role("heading", name="deep-trees run")).to_be_visible()
    chart = page.locator('figure.metric-history[data-metric="auc"]')
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart.locator(".scatterlayer .trace .point")).to_have_count(4)  # one marker per logged step
    expect(page.locator("#params")).to_contain_text("penalty")
    expect(page.locator("#datasets")).to_contain_text("customers-2024")
    expect(page.locator("#datasets")).to_contain_text("training")
    artifacts = page.locator("#artifacts")
    expect(artifacts).to_contain_text("summary.txt")
    with page.expect_download() as info:
        artifacts.locator("tr", has_text="summary.txt").get_by_role("link", name="Download").click()
    assert open(info.value.path(), encoding="utf-8").read() == "depth 6 beats depth 4"

    page.locator("#registered-versions").get_by_role("link", name="churn v1").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/1/")
    page.get_by_role("link", name=f"Run {run_id}").click()
    expect(page).to_have_url(f"{base}/runs/{run_id}/")
    expect(page.locator("#run-id")).to_have_text(run_id)

    # Two runs side by side, picked on the experiment page.
    page.get_by_role("link", name="churn-training").first.click()
    for name in ("deep-trees", "shallow-trees"):
        page.get_by_label(f"Compare {name}").check()
    page.get_by_role("button", name="Compare selected runs").click()
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(page.locator("#metrics tr", has_text="auc")).to_contain_text("0.88")
    expect(page.locator("#metric-chart .main-svg").first).to_be_visible()
    # the 400 of the bad filter above is the only console error: a failed request, never a CSP violation
    assert [p for p in problems if "400" not in p] == [], problems
