"""The Content-Security-Policy: on every page, with no inline script, and templates that need none."""

from __future__ import annotations

import re
from pathlib import Path

import plotly
import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
# Rendered to PDF by WeasyPrint, never served as a page: their inline <style> meets no browser policy.
PDF_TEMPLATES = {"governance/card_pdf.html", "governance/erasure_certificate.html", "governance/techdoc_pdf.html"}


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.fixture
def churn(registered_model, make_version):
    make_version(registered_model, metrics={"auc": 0.9})
    return registered_model


@pytest.mark.parametrize("path", [
    "/accounts/login/", "/", "/models/churn/", "/models/churn/versions/1/", "/compare/?versions=churn/1",
    "/deployments/", "/audit/", "/tokens/", "/admin/", "/api/v1/docs/", "/models/nothing-here/", "/api/v1/models",
])
def test_every_response_carries_a_policy_without_inline_script(client: Client, churn, path):
    client.force_login(churn.owner)
    response = client.get(path)
    assert response.status_code in (200, 302, 400, 404)  # error pages carry it too
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]


def test_the_login_page_of_an_anonymous_visitor_carries_the_policy(client: Client, db):
    response = client.get("/accounts/login/")
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_the_api_docs_load_their_start_up_script_as_a_file(client: Client, owner):
    client.force_login(owner)
    page = client.get("/api/v1/docs/").content.decode()
    assert re.search(r"<script>\s*\S", page) is None and "<style" not in page
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_templates_hold_no_inline_script_handler_or_style():
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        name = path.relative_to(ROOT / "templates").as_posix()
        if name in PDF_TEMPLATES:
            continue
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)(?![^>]*application/(ld\+)?json)[^>]*>", r"\son[a-z]+\s*=",
                        r"\sstyle\s*=", r"<style", r"javascript:", r"hx-on"):
            offenders += [f"{name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []


def test_the_plotly_stylesheet_matches_the_installed_plotly_js():
    bundle = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    version = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", bundle.read_text()[:500]).group(1)
    header = (ROOT / "static" / "css" / "plotly.css").read_text()[:300]
    assert f"plotly.js v{version}" in header, "regenerate static/css/plotly.css for this plotly.js"
    template = (ROOT / "templates" / "_plotly.html").read_text()
    map_style_id = re.search(r'document\.getElementById\("([0-9a-f]{64})"\)', bundle.read_text()).group(1)
    assert map_style_id in template, "plotly.js's map stylesheet id changed: update templates/_plotly.html"
