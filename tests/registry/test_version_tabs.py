"""The version page's tabs: each tab has its own address; a direct visit renders the whole page with that tab
selected, a tab link's htmx request only the tab bar and the tab, the pipeline's polling and the lineage controls
still get their panel alone; every tab reads in a fixed number of queries whatever the version holds."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services

pytestmark = pytest.mark.django_db

TABS = {  # slug: (address under the version's page, a text only that tab shows)
    "overview": ("", "Provenance"),
    "artifacts": ("artifacts/", "No files were uploaded"),
    "pipeline": ("pipeline/", "Scans and jobs"),
    "lineage": ("lineage/", "No lineage is recorded for this version yet"),
    "model-card": ("model-card/", "has no model card yet"),
    "deployments": ("deployments/", "has not taken part in a rollout"),
    "history": ("history/", "Version registered"),
}
TAB_AREA = {"HX-Request": "true", "HX-Target": "version-tabs"}


def _selected(html: str) -> list[str]:
    return re.findall(r'id="tab-([\w-]+)"[^>]*aria-selected="true"', html)


@pytest.fixture
def version(registered_model, make_version):
    return make_version(registered_model)


@pytest.mark.parametrize("slug", list(TABS))
def test_each_tab_is_a_page_of_its_own_with_the_tab_selected(client, owner, version, slug):
    client.force_login(owner)
    address, text = TABS[slug]
    response = client.get(f"/models/churn/versions/1/{address}")
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith("<!doctype html>")
    assert _selected(html) == [slug] and text in html
    assert html.count('role="tab"') == 7 and 'role="tablist"' in html and 'role="tabpanel"' in html
    assert f'aria-labelledby="tab-{slug}"' in html
    for other_address, _ in TABS.values():  # every tab link goes through htmx and pushes its address
        url = f"/models/churn/versions/1/{other_address}"
        assert f'href="{url}" aria-controls="version-tabpanel"' in html
        assert f'hx-get="{url}" hx-target="#version-tabs" hx-swap="outerHTML" hx-push-url="true"' in html


@pytest.mark.parametrize("slug", list(TABS))
def test_a_tab_link_gets_only_the_tab_bar_and_the_tab(client, owner, version, slug):
    client.force_login(owner)
    address, text = TABS[slug]
    response = client.get(f"/models/churn/versions/1/{address}", headers=TAB_AREA)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "<header" not in html
    assert html.lstrip().startswith("<title>churn v1") and 'id="version-tabs"' in html
    assert _selected(html) == [slug] and text in html
    assert "HX-Target" in response["Vary"] and "no-cache" in response["Cache-Control"]


def test_htmx_reloading_a_page_missing_from_its_history_gets_the_whole_page(client, owner, version):
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/artifacts/",
                      headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}).content.decode()
    assert html.startswith("<!doctype html>") and _selected(html) == ["artifacts"]


def test_the_pipeline_panel_polling_itself_still_gets_the_panel_alone(client, owner, version):
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/pipeline/",
                      headers={"HX-Request": "true", "HX-Target": "pipeline-panel"}).content.decode()
    assert html.startswith('<div id="pipeline-panel"') and 'role="tablist"' not in html


def test_an_unknown_tab_is_not_found_and_hidden_versions_stay_hidden(client, owner, outsider, version):
    client.force_login(owner)
    assert client.get("/models/churn/versions/1/nonsense/").status_code == 404
    assert client.get("/models/churn/versions/9/artifacts/").status_code == 404
    client.force_login(outsider)
    for address, _ in TABS.values():
        assert client.get(f"/models/churn/versions/1/{address}").status_code == 404


def test_a_version_with_lineage_shows_its_graph_on_the_lineage_tab(client, owner, registered_model, make_version):
    make_version(registered_model, datasets=[{"name": "customers", "uri": "s3://d/c.parquet", "role": "train"}])
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/lineage/").content.decode()
    assert _selected(html) == ["lineage"] and "data-lineage-chart" in html and "Open full lineage" in html


def test_history_tab_tells_the_version_story_from_the_audit_trail(client, owner, registered_model, make_version):
    v1 = make_version(registered_model)
    v2 = make_version(registered_model)
    services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    services.version_transition_stage(version=v1, actor=owner, stage="Staging")
    services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/history/").content.decode()
    assert "None → Staging" in html and "@champion → version 1" in html
    assert "@champion → version 2 (was 1)" in html  # the alias moved away from it
    other = client.get("/models/churn/versions/2/history/").content.decode()
    assert "Staging" not in other and "@champion → version 2 (was 1)" in other


def test_history_tab_shows_an_archive_caused_by_another_versions_move(client, owner, registered_model, make_version):
    v1, v2, v3 = (make_version(registered_model) for _ in range(3))
    services.version_transition_stage(version=v1, actor=owner, stage="Production")
    services.version_transition_stage(version=v3, actor=owner, stage="Staging", archive_existing_versions=True)
    services.version_transition_stage(version=v2, actor=owner, stage="Production", archive_existing_versions=True)
    client.force_login(owner)
    html = client.get("/models/churn/versions/1/history/").content.decode()
    assert "Archived when version 2 moved to Production" in html and "None → Production" in html
    for number in (2, 3):  # neither was archived by a move; v3's own move archived nothing
        other = client.get(f"/models/churn/versions/{number}/history/").content.decode()
        assert "Archived when" not in other


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("slug", list(TABS))
def test_every_tab_reads_in_a_fixed_number_of_queries(client, owner, registered_model, make_version, slug,
                                                      django_assert_max_num_queries):
    """The same number of queries for a small version and one with many files, datasets, tags and events."""
    small = make_version(registered_model, files={"a.txt": b"a"}, tags={"t": "1"},
                         datasets=[{"name": "d0", "uri": "s3://d/0", "role": "train"}])
    big = make_version(registered_model, files={f"dir{i}/f{i}.txt": f"{i}".encode() for i in range(12)},
                       tags={f"t{i}": str(i) for i in range(8)},
                       datasets=[{"name": f"d{i}", "uri": f"s3://d/{i}", "role": "train"} for i in range(6)],
                       metrics={f"m{i}": i / 10 for i in range(10)})
    for stage in ("Staging", "Production", "Archived"):
        services.version_transition_stage(version=big, actor=owner, stage=stage)
    for alias in ("a", "b", "c"):
        services.alias_set(model=registered_model, alias=alias, version=big, actor=owner)
    client.force_login(owner)
    address = TABS[slug][0]
    client.get(f"/models/churn/versions/{small.number}/{address}")  # warm the per-process caches
    few = _queries(client, f"/models/churn/versions/{small.number}/{address}")
    many = _queries(client, f"/models/churn/versions/{big.number}/{address}")
    assert many == few, f"{slug}: {few} queries for a small version, {many} for a larger one"
    with django_assert_max_num_queries(40):
        client.get(f"/models/churn/versions/{big.number}/{address}", headers=TAB_AREA)
