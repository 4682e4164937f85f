"""A compliance user opens a model card in Chromium, exports the PDF, and the download arrives."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from governance.cards import services as card_services
from registry import access, services
from registry.models import Role
from tests.browser.test_governance_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compliance_user_exports_a_card_pdf(page: Page, live_server, make_user, tmp_path):
    owner = make_user("olivia")
    compliance = make_user("carla")
    model = services.model_create(actor=owner, name="churn")
    access.role_grant(model=model, actor=owner, user=compliance, role=Role.VIEWER)
    version = services.version_create(model=model, actor=owner, metrics={"auc": 0.88},
                                      datasets=[{"name": "events-2026", "digest": "sha256:" + "1" * 64}])
    card = card_services.card_create(version=version, actor=owner)
    card = card_services.card_update(card=card, actor=owner, section="intended_use",
                                     values={"primary_uses": "Retention offers for **existing** customers."})
    base = live_server.url

    sign_in(page, base, "carla")
    page.goto(f"{base}/models/churn/versions/1/")
    page.get_by_role("link", name="Open the model card").click()
    expect(page.get_by_role("heading", name="Model card")).to_be_visible()
    expect(page.get_by_test_id("card-state")).to_have_text("Draft")
    expect(page.locator("#section-intended_use strong")).to_have_text("existing")
    expect(page.get_by_role("button", name="Send for review")).to_have_count(0)
    with page.expect_download() as download_info:
        page.get_by_test_id("export-pdf").click()
    download = download_info.value
    assert download.suggested_filename == "churn-v1-model-card.pdf"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    from pypdf import PdfReader

    assert card.sha256[:32] in "".join(p.extract_text() for p in PdfReader(path).pages)
