"""A 2,000-node lineage neighbourhood in Chromium: drawn grouped by kind, a group expands on click and groups again.
(How fast it draws is measured by bench/lineage_render.py, not asserted here.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_pages_browser import sign_in
from tests.lineage_support import neighbourhood_seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The index of a group's marker among the points of the group trace (the trace whose meta is "lineage-group").
GROUP_POINT = """([plot, prefix]) => {
  const t = plot.data.findIndex((trace) => trace.meta === "lineage-group");
  if (t < 0) { return null; }
  const i = plot.data[t].text.findIndex((label) => label.startsWith(prefix));
  const point = plot.querySelectorAll(".scatterlayer .trace")[t].querySelectorAll("path.point")[i];
  const box = point.getBoundingClientRect();
  return {x: box.x + box.width / 2, y: box.y + box.height / 2, label: plot.data[t].text[i]};
}"""


def click_group(page: Page, prefix: str) -> str:
    """Click the marker of the group whose label starts with `prefix`; return its label."""
    plot = page.locator("#lineage-graph .lineage-plot[data-drawn-at]")
    spot = plot.evaluate(f"(plot) => ({GROUP_POINT})([plot, {prefix!r}])")
    assert spot is not None, f"no group {prefix!r} drawn"
    page.evaluate("document.getElementById('lineage-graph').dataset.stale = '1'")
    page.mouse.move(spot["x"], spot["y"])
    page.mouse.click(spot["x"], spot["y"])
    expect(page.locator("#lineage-graph[data-stale]")).to_have_count(0)  # swapped by htmx
    return spot["label"]


def test_a_2000_node_neighbourhood_is_drawn_grouped_and_expands_on_click(page: Page, live_server, make_user):
    alice = make_user("alice")
    hood = neighbourhood_seed(owner=alice, size=2000)
    sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/lineage/nodes/{hood.focus.pk}/")
    graph = page.locator("#lineage-graph")
    expect(graph.locator(".lineage-plot[data-drawn-at]")).to_have_count(1)
    expect(graph).to_contain_text("2000 nodes")
    expect(graph.locator("[data-lineage-groups]")).to_contain_text("Grouped by kind")
    labels = graph.locator(".lineage-plot").evaluate(
        "(plot) => plot.data.filter((t) => t.meta === 'lineage-group').flatMap((t) => t.text)")
    assert sorted(labels) == sorted([
        f"Dataset ×{hood.counts['dataset']}", f"Model version ×{hood.counts['model_version']}",
        f"Converted artifact ×{hood.counts['converted_artifact']}", f"Deployment ×{hood.counts['deployment']}",
        f"Prediction batch ×{hood.counts['prediction_batch']}"])

    # A click on the deployments' group draws each deployment; the other kinds stay grouped.
    assert click_group(page, "Deployment").startswith("Deployment ×")
    plot = graph.locator(".lineage-plot[data-drawn-at]")
    expect(plot).to_have_count(1)
    drawn = plot.evaluate("(plot) => plot.data.filter((t) => t.name === 'Deployment').map((t) => t.x.length)")
    assert drawn == [hood.counts["deployment"]]
    expect(graph.locator("[data-collapse=deployment]")).to_be_visible()
    expect(graph.locator("[data-expand=deployment]")).to_have_count(0)
    # Changing the depth keeps the expansion; "group again" folds the kind back into one node.
    page.evaluate("document.getElementById('lineage-graph').dataset.stale = '1'")
    graph.get_by_label("Depth").select_option("5")
    expect(page.locator("#lineage-graph[data-stale]")).to_have_count(0)
    expect(graph.locator("[data-collapse=deployment]")).to_be_visible()
    page.evaluate("document.getElementById('lineage-graph').dataset.stale = '1'")
    graph.locator("[data-collapse=deployment]").click()
    expect(page.locator("#lineage-graph[data-stale]")).to_have_count(0)
    expect(graph.locator("[data-expand=deployment]")).to_be_visible()

    # A click on an ordinary node still opens it.
    click_group(page, "Deployment")
    target = graph.locator(".lineage-plot[data-drawn-at]").evaluate("""(plot) => {
      const t = plot.data.findIndex((trace) => trace.name === "Deployment");
      const box = plot.querySelectorAll(".scatterlayer .trace")[t].querySelector("path.point").getBoundingClientRect();
      return {x: box.x + box.width / 2, y: box.y + box.height / 2, url: plot.data[t].customdata[0]};
    }""")
    assert target["url"] != f"/lineage/nodes/{hood.focus.pk}/"
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    expect(page).to_have_url(f"{live_server.url}{target['url']}")
    expect(page.locator("h1")).to_contain_text("hood deployment")
