"""Click through the registry pages in Chromium: sign in, search, create, upload, alias, chart."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from registry import services
from registry.models import AccessToken, Alias, Artifact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-correct-horse-42"
PICKLE = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


def sign_in(page: Page, base: str, username: str) -> None:
    """Sign in through the login form and land on the model list."""
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", name="Registered models")).to_be_visible()


def register_version(page: Page, tmp_path, semver: str, metrics: str) -> None:
    """Fill the register-version form with two uploaded files and submit it."""
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(PICKLE)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("scikit-learn==1.9.1\n")
    page.get_by_role("link", name="Register version").first.click()
    expect(page.get_by_role("heading", name=re.compile("Register a version of churn"))).to_be_visible()
    page.set_input_files("input[name=files]", [str(model_file), str(requirements)])
    page.get_by_label("Semantic version").fill(semver)
    page.get_by_label("Metrics").fill(metrics)
    page.get_by_label("Parameters").fill("max_depth=6")
    page.get_by_label("Source URI").fill("s3://bucket/runs/1/model")
    page.get_by_role("button", name="Register version").click()


def test_registry_flow_in_the_browser(page: Page, live_server, make_user, tmp_path):
    user = make_user("alice")
    services.model_create(actor=user, name="fraud", description="Flags fraud.", tags={"team": "risk"})
    base = live_server.url

    sign_in(page, base, "alice")
    expect(page.locator(".model-row")).to_have_count(1)

    # Create a model through the form.
    page.get_by_role("link", name="New model").first.click()
    page.get_by_label("Name").fill("churn")
    page.get_by_label("Description").fill("Predicts **churn** from usage.")
    page.get_by_label("Tags").fill("team=ml")
    page.get_by_role("button", name="Create model").click()
    expect(page).to_have_url(f"{base}/models/churn/")
    expect(page.get_by_text("Created model churn.")).to_be_visible()
    expect(page.locator(".prose strong")).to_have_text("churn")

    # Register two versions with uploaded files.
    register_version(page, tmp_path, "1.0.0", "auc=0.81\nloss=0.52")
    expect(page).to_have_url(f"{base}/models/churn/versions/1/")
    expect(page.get_by_text("Registered version 1 of churn.")).to_be_visible()
    page.get_by_role("tab", name="Artifacts").click()  # the files are on the version's Artifacts tab
    expect(page).to_have_url(f"{base}/models/churn/versions/1/artifacts/")
    artifacts = page.locator("#artifacts")
    expect(artifacts.get_by_text("model.pkl")).to_be_visible()
    expect(artifacts.locator(".badge-format-pickle")).to_be_visible()
    expect(artifacts.get_by_role("link", name="Download").first).to_have_attribute(
        "href", "/api/v1/models/churn/versions/1/artifacts/model.pkl"
    )
    assert Artifact.objects.filter(version__model__name="churn", path="model.pkl").exists()
    page.get_by_role("link", name="churn").click()
    register_version(page, tmp_path, "1.1.0", "auc=0.88\nloss=0.41")
    expect(page).to_have_url(f"{base}/models/churn/versions/2/")

    # The model page charts each metric with the local plotly.js.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="churn").click()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible()

    # Set an alias through the form.
    alias_form = page.locator(".alias-form")
    alias_form.get_by_label("Alias").fill("champion")
    alias_form.get_by_label("Version").select_option("2")
    alias_form.get_by_role("button", name="Set alias").click()
    expect(page.get_by_text("Alias @champion now points at version 2.")).to_be_visible()
    expect(page.locator("#aliases").get_by_role("link", name="Version 2")).to_be_visible()
    assert Alias.objects.get(name="champion").version.number == 2

    # A reserved alias is a readable error on the same page.
    alias_form = page.locator(".alias-form")
    alias_form.get_by_label("Alias").fill("latest")
    alias_form.get_by_role("button", name="Set alias").click()
    expect(page.locator(".alias-form .alert-error")).to_contain_text("is reserved")

    # Search the model list with the filter language (htmx swaps only the results).
    page.get_by_role("link", name="Models", exact=True).first.click()
    expect(page.locator(".model-row")).to_have_count(2)
    search = page.get_by_label("Search", exact=True)
    search.fill("tags.team = 'ml' AND metrics.auc > 0.85")
    search.press("Enter")
    expect(page.locator(".model-row")).to_have_count(1)
    expect(page.locator(".model-row .model-name")).to_have_text("churn")
    expect(page).to_have_url(re.compile(r"q=tags\.team"))
    expect(page.locator(".search-understood")).to_contain_text("filter expression")
    expect(page.locator(".model-row")).to_contain_text("@champion → v2")

    # Plain words need no syntax: any case, in names, descriptions and tag values; the page says what it did.
    search.fill("CHURN")
    search.press("Enter")
    expect(page.locator(".search-understood")).to_contain_text("Searched for the word “CHURN”")
    expect(page.locator(".model-row")).to_have_count(1)
    expect(page.locator(".model-row .model-name")).to_have_text("churn")

    # A bad filter shows the message in place, never a blank page.
    search.fill("colour = 'red'")
    search.press("Enter")
    expect(page.locator("#model-results .alert-error")).to_contain_text("Unknown field")
    expect(page.get_by_role("heading", name="Registered models")).to_be_visible()

    # Open a model, then a version, from the list.
    search.fill("name LIKE 'chu%'")
    search.press("Enter")
    page.locator(".model-row .model-name", has_text="churn").click()
    expect(page).to_have_url(f"{base}/models/churn/")
    page.locator("#versions").get_by_role("link", name="Version 1").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/1/")
    expect(page.locator("#provenance")).to_contain_text("s3://bucket/runs/1/model")

    # Move it to Production through the stage form.
    page.locator(".stage-form").get_by_label("Stage", exact=True).select_option("Production")
    page.locator(".stage-form").get_by_role("button", name="Transition").click()
    expect(page.get_by_text("Version 1 is now in Production.")).to_be_visible()
    expect(page.locator(".page-header .badge-stage-production")).to_be_visible()


def test_token_page_shows_the_secret_once(page: Page, live_server, make_user):
    make_user("bob")
    base = live_server.url
    sign_in(page, base, "bob")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tokens").click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.get_by_label("Name").fill("ci")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#raw-token").inner_text()
    assert secret.startswith("stm_")
    expect(page).to_have_url(f"{base}/tokens/")  # post/redirect/get

    # The copy button puts the secret on the clipboard and says so.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # A refresh neither creates a second token nor shows the secret again.
    page.reload()
    expect(page.locator("#raw-token")).to_have_count(0)
    expect(page.locator(".token-table tbody tr")).to_have_count(1)
    assert AccessToken.objects.filter(user__username="bob").count() == 1
    expect(page.locator(".token-table")).to_contain_text("ci")

    # Revoking asks first, in a dialog; Cancel changes nothing, the confirming button revokes.
    page.get_by_role("button", name="Revoke token ci").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("this cannot be undone")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".token-table .badge-active")).to_be_visible()
    page.get_by_role("button", name="Revoke token ci").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Revoke token").click()
    expect(page.locator(".token-table .badge-revoked")).to_be_visible()


def test_upload_shows_progress_and_every_error_at_once(page: Page, live_server, make_user, tmp_path):
    user = make_user("carol")
    services.model_create(actor=user, name="churn")
    base = live_server.url
    sign_in(page, base, "carol")
    big = tmp_path / "weights.bin"
    big.write_bytes(b"\x00" * (24 * 1024 * 1024))  # large enough that the bar moves before the answer
    page.goto(f"{base}/models/churn/versions/new/")
    page.set_input_files("input[name=files]", [str(big)])
    # Three mistakes in three fields: all are reported on the first submit.
    page.get_by_label("Semantic version").fill("1.0")
    page.get_by_label("Metrics").fill("auc")
    page.get_by_label("Source URI").fill("file:///etc/passwd")
    page.get_by_role("button", name="Register version").click()
    expect(page.locator("progress.upload-progress")).to_be_visible()
    expect(page.get_by_text("is not a semantic version")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("is not of the form name=value")).to_be_visible()
    expect(page.get_by_text("file:///etc/passwd").first).to_be_visible()
    assert not Artifact.objects.exists()

    # Corrected, the same form uploads with its bar and opens the new version with its message.
    page.set_input_files("input[name=files]", [str(big)])
    page.get_by_label("Semantic version").fill("1.0.0")
    page.get_by_label("Metrics").fill("auc=0.9")
    page.get_by_label("Source URI").fill("")
    page.get_by_role("button", name="Register version").click()
    expect(page).to_have_url(f"{base}/models/churn/versions/1/", timeout=60_000)
    expect(page.get_by_text("Registered version 1 of churn.")).to_be_visible()
