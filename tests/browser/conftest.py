"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import need_service

# A 2-core machine running the whole suite in parallel can be slow to paint a Plotly chart; wait longer than 5 s.
expect.set_options(timeout=20_000)

# Playwright's sync API runs an event loop in the test thread; the ORM calls made by fixtures there are safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session", autouse=True)
def _chromium_present() -> None:
    """Skip (fail in CI) when Debian's Chromium is not installed (session-scoped: it must run before the browser
    fixtures, which are session-scoped too, try to launch it)."""
    if not CHROMIUM.exists():
        need_service("Chromium", f"{CHROMIUM} is missing; install it with `apt-get install chromium`")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, _chromium_present: None) -> dict:
    """Launch the system Chromium, headless and quiet, instead of a downloaded browser."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(autouse=True)
def _patient_page(page) -> None:
    """Give navigation and locator actions the same margin as the assertions."""
    page.set_default_timeout(20_000)


SERIOUS = ("serious", "critical")


def assert_no_serious_axe_violations(page, *, exclude: list[str] | None = None) -> None:
    """Run axe-core (the copy bundled with axe-playwright-python, injected into the page: no CDN) and fail on
    any serious or critical violation, naming each rule and the first elements it flags."""
    from axe_playwright_python.sync_playwright import Axe

    context = {"exclude": [[selector] for selector in exclude]} if exclude else None
    results = Axe().run(page, context=context)
    bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not bad, f"axe on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}" for v in bad)
