"""A compliance officer records an erasure request in Chromium, sees its impact, resolves it, gets the certificate."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from governance.models import ErasureRequest
from tests.browser.test_governance_browser import PASSWORD, sign_in
from tests.governance.conftest import SUBJECT, world  # noqa: F401 - the shared erasure fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_officer_traces_resolves_and_certifies_an_erasure(page: Page, live_server, world, tmp_path):  # noqa: F811
    officer = world["officer"]
    officer.set_password(PASSWORD)
    officer.save()
    base = live_server.url

    sign_in(page, base, "officer")
    page.get_by_role("link", name="Erasure").click()
    page.get_by_label("Subject identifier").fill(SUBJECT)
    page.get_by_role("button", name="Record and trace impact").click()
    expect(page).to_have_url(re.compile(r"/erasure/\d+/$"))
    expect(page.get_by_test_id("obligation")).to_have_count(7)
    expect(page.locator("#impact .js-plotly-plot")).to_have_count(1)
    assert SUBJECT not in page.content()

    page.get_by_role("button", name="Close request").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Close request").click()
    expect(page.locator(".messages")).to_contain_text("unresolved")

    for _ in range(7):
        row = page.get_by_test_id("obligation").filter(has=page.locator("details.resolve")).first
        row.locator("summary").click()
        row.get_by_label("Resolution").select_option("not_applicable")
        row.get_by_label("Reason").fill("Covered by the test.")
        row.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Obligation resolved.")).to_be_visible()
    page.get_by_role("button", name="Close request").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("become final")
    dialog.get_by_role("button", name="Close request").click()
    expect(page.get_by_text("Request closed")).to_be_visible()
    assert ErasureRequest.objects.get().state == "closed"

    with page.expect_download() as info:
        page.get_by_role("link", name="Certificate (PDF)").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
