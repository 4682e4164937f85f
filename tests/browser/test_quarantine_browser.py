"""In Chromium: a quarantined version shows a red banner and the reason where the Download button was; a maintainer
asks for a release, an administrator approves it, and the file can be downloaded again."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from registry import access, services
from registry.models import ArtifactRelease, Role
from tests.browser.test_governance_browser import sign_in  # clears the cookies first
from tests.conftest import spooled
from tests.registry.pickle_corpus import MALICIOUS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_quarantine_banner_no_download_and_four_eyes_release(page: Page, live_server, make_user):
    owner, maintainer, admin = make_user("olive"), make_user("maint"), make_user("admin", staff=True)
    model = services.model_create(actor=owner, name="churn")
    access.role_grant(model=model, actor=owner, user=maintainer, role=Role.MAINTAINER)
    services.version_create(model=model, actor=owner, files=[("model.pkl", spooled(MALICIOUS["os.system"][0])),
                                                             ("notes.txt", spooled(b"hello"))])  # scanned on commit
    base = live_server.url

    sign_in(page, base, "maint")
    page.goto(f"{base}/models/churn/")
    banner = page.locator(".quarantine-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Version 1")
    expect(page.locator("#versions .badge-quarantined")).to_have_text("Quarantined")
    expect(page.locator("#versions").get_by_text("Ready", exact=True)).to_have_count(0)

    page.goto(f"{base}/models/churn/versions/1/artifacts/")
    banner = page.locator(".quarantine-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("posix.system")
    expect(banner).to_have_css("border-left-color", "rgb(198, 40, 40)")  # the danger red (--danger)
    artifacts = page.locator("#artifacts")
    pkl_row = artifacts.locator("tr.tree-file", has_text="model.pkl")
    expect(pkl_row.get_by_role("link", name="Download")).to_have_count(0)
    expect(pkl_row.locator(".quarantine-reason")).to_contain_text("posix.system")
    expect(artifacts.locator("tr.tree-file", has_text="notes.txt").get_by_role("link", name="Download")).to_be_visible()

    # The maintainer asks, accepting the exact global named, with a reason.
    form = page.locator(".release-request-form")
    form.get_by_label("I accept posix.system").check()
    form.get_by_label("Reason").fill("A test fixture; reviewed by hand.")
    form.get_by_role("button", name="Request release").click()
    expect(page.get_by_text("Release requested")).to_be_visible()
    expect(page.locator(".release-table")).to_contain_text("Requested")
    expect(page.get_by_role("button", name="Approve release")).to_have_count(0)  # not for the requester
    expect(page.locator(".quarantine-banner")).to_be_visible()  # still quarantined

    # An administrator approves: the banner goes and the Download button is back.
    sign_in(page, base, "admin")
    page.goto(f"{base}/models/churn/versions/1/artifacts/")
    page.get_by_role("button", name="Approve release").click()
    expect(page.get_by_text("Release approved")).to_be_visible()
    expect(page.locator(".quarantine-banner")).to_have_count(0)
    pkl_row = page.locator("#artifacts tr.tree-file", has_text="model.pkl")
    expect(pkl_row.get_by_role("link", name="Download")).to_have_attribute(
        "href", "/api/v1/models/churn/versions/1/artifacts/model.pkl")
    release = ArtifactRelease.objects.get()
    assert (release.state, release.requested_by, release.approved_by) == ("approved", maintainer, admin)
