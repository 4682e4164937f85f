"""An engineer compares three versions in Chromium: picks them, sees the chart and the diff, downloads the CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from registry import services
from tests.browser.test_pages_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_engineer_compares_three_versions(page: Page, live_server, make_user):
    alice = make_user("alice")
    model = services.model_create(actor=alice, name="churn")
    for i, (auc, depth) in enumerate([(0.81, "4"), (0.88, "6"), (0.85, "6")], start=1):
        services.version_create(model=model, actor=alice, metrics={"auc": auc, "loss": 1 - auc},
                                params={"max_depth": depth, "seed": "7"}, code_commit=f"{i}" * 7)
    services.version_create(model=model, actor=alice, metrics={"auc": 0.5})
    base = live_server.url
    sign_in(page, base, "alice")

    page.goto(f"{base}/models/churn/")
    page.locator("#champion-panel").get_by_role("link", name="Compare versions").click()
    expect(page.get_by_role("heading", name="Compare versions")).to_be_visible()
    for number in (1, 2, 3):
        page.get_by_label(f"churn v{number}", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()

    expect(page).to_have_url(re.compile(r"/compare/\?versions=churn%2F1%2Cchurn%2F2%2Cchurn%2F3$"))
    expect(page.locator("#metric-chart .main-svg").first).to_be_visible()
    metrics = page.locator("#metrics")
    expect(metrics.locator("td.best")).to_have_count(2)  # auc and loss: v2 is best on both
    expect(metrics.locator("tr", has_text="auc").locator("td.best")).to_contain_text("0.88")
    params = page.locator("#params")
    expect(params.locator("tbody tr")).to_have_count(1)  # changed only: max_depth, not seed
    expect(params).to_contain_text("max_depth")
    params.get_by_role("link", name="All").click()
    expect(page.locator("#params tbody tr")).to_have_count(2)
    expect(page.locator("#code")).to_contain_text("2222222")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "comparison-churn-1-churn-2-churn-3.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert rows[0] == ["section", "name", "churn/1", "churn/2", "churn/3"]
    assert ["metric", "auc", "0.81", "0.88", "0.85"] in rows

    # Too many versions is a readable message on the same page, not an error page.
    page.goto(f"{base}/compare/?versions=churn/1,churn/2,churn/3,churn/4,churn/1,churn/2")
    expect(page.locator(".alert-error")).to_contain_text("Compare at most 5 versions")


def test_version_page_draws_its_lineage(page: Page, live_server, make_user):
    alice = make_user("alice")
    model = services.model_create(actor=alice, name="churn")
    services.version_create(model=model, actor=alice, code_commit="abc1234",
                            datasets=[{"name": "customers", "digest": "d1", "role": "train"}])
    sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/models/churn/versions/1/")
    page.get_by_role("tab", name="Lineage").click()
    expect(page).to_have_url(f"{live_server.url}/models/churn/versions/1/lineage/")
    lineage = page.locator("#lineage")
    expect(lineage.locator(".js-plotly-plot .main-svg").first).to_be_visible()
    expect(lineage).to_contain_text("3 nodes, 2 edges")
    # htmx swaps the whole graph on change: mark the old one and wait until it is gone, or the clicks below can
    # land on an element that is being replaced.
    page.evaluate("document.getElementById('lineage-graph').dataset.stale = '1'")
    lineage.get_by_label("Direction").select_option("upstream")
    expect(page.locator("#lineage-graph[data-stale]")).to_have_count(0)
    expect(lineage.locator(".js-plotly-plot .main-svg").first).to_be_visible()
    lineage.get_by_text("Nodes as a list").click()
    lineage.get_by_role("link", name="Dataset version customers").click()
    expect(page.locator("#trained-on")).to_contain_text("churn v1")
