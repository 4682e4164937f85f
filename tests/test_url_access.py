"""Every URL pattern refuses anonymous visitors (401/403/redirect to login) except an explicit public list."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"healthz", "readyz", "accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/",
          "api/v1/signing-key"}  # the published key that verifies version signatures
SAMPLE = {"int": "1", "str": "x", "path": "a/b.txt", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000000"}


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str) -> str | None:
    if route.startswith("^") or "(?P" in route:
        # Regex routes (admin internals): fill named groups with a plausible value.
        route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route).lstrip("^").rstrip("$").replace("\\", "")
        return route if "(" not in route else None
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE.get(m.group(1) or "str", "x"), route)


ROUTES = sorted({r for r in (_concrete(p) for p in _walk(get_resolver().url_patterns)) if r is not None})


def _refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    location = response.headers.get("Location", "")
    return response.status_code == 302 and ("/accounts/login/" in location or "/admin/login/" in location)


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if r not in PUBLIC and not r.startswith("static/")])
def test_anonymous_is_refused(client, route):
    for method in ("get", "post"):
        response = getattr(client, method)("/" + route)
        assert _refused(response), f"{method.upper()} /{route} answered {response.status_code} to an anonymous visitor"


def test_public_allowlist_is_small_and_real():
    assert PUBLIC <= set(ROUTES)
    assert len(ROUTES) > 30


# What an anonymous visitor gets from each public route: (method, status, what the answer must contain).
PUBLIC_ANSWERS = {
    "healthz": ("get", 200, '"status": "ok"'),
    "readyz": ("get", 200, '"database": "ok"'),
    "accounts/login/": ("get", 200, 'name="password"'),
    "accounts/logout/": ("post", 302, "/accounts/login/"),
    "admin/login/": ("get", 200, 'name="password"'),
    "admin/logout/": ("post", 302, "/admin/"),
    "api/v1/signing-key": ("get", 200, "-----BEGIN PUBLIC KEY-----"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_public_routes_answer_anonymous_visitors(client, route):
    method, status, expected = PUBLIC_ANSWERS[route]
    response = getattr(client, method)("/" + route)
    assert response.status_code == status
    answer = response.headers.get("Location", "") if status == 302 else response.content.decode()
    assert expected in answer


@pytest.mark.django_db
def test_the_published_key_is_the_server_signing_key(client):
    from registry.pipeline import services as pipeline

    response = client.get("/api/v1/signing-key")
    assert response.content.decode() == pipeline.public_key_pem()
    assert response["X-Key-Fingerprint"] == pipeline.key_fingerprint()
