"""Token scopes: API tokens for the registry APIs, serving tokens for the gateway only."""

from __future__ import annotations

import pytest

from registry import access
from registry.authentication import user_for_token
from registry.errors import InvalidInput

pytestmark = pytest.mark.django_db


def test_tokens_default_to_the_api_scope_and_serving_tokens_only_serve(owner):
    api_token, api_raw = access.token_create(user=owner, actor=owner, name="ci")
    serve_token, serve_raw = access.token_create(user=owner, actor=owner, name="app", scopes=["serve"])
    assert api_token.scopes == ["api"] and serve_token.scopes == ["serve"]
    assert user_for_token(api_raw) == owner and user_for_token(api_raw, scope="serve") is None
    assert user_for_token(serve_raw) is None and user_for_token(serve_raw, scope="serve") == owner


@pytest.mark.parametrize("scopes", [[], ["admin"], "api", [1]])
def test_unknown_scopes_are_refused(owner, scopes):
    with pytest.raises(InvalidInput, match="scopes"):
        access.token_create(user=owner, actor=owner, name="x", scopes=scopes)


def test_the_api_creates_scoped_tokens(api_client_for, owner):
    client = api_client_for(owner)
    created = client.post("/api/v1/tokens", {"name": "app", "scopes": ["serve"]}, format="json")
    assert created.status_code == 201 and created.json()["scopes"] == ["serve"]
    refused = client.post("/api/v1/tokens", {"name": "app", "scopes": ["root"]}, format="json")
    assert refused.status_code == 400


def test_the_tokens_page_creates_a_serving_token(client, owner):
    client.force_login(owner)
    response = client.post("/tokens/", {"name": "app", "scope": "serve"})
    assert response.status_code == 302  # post/redirect/get: the list shows the secret once
    assert owner.access_tokens.get(name="app").scopes == ["serve"]
    client.post("/tokens/", {"name": "plain"})
    assert owner.access_tokens.get(name="plain").scopes == ["api"]
