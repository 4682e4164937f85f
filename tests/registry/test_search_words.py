"""Plain-word search: the models page's one box and `q=` on the native API beside `filter=`."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.errors import InvalidInput
from registry.search.words import understand

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text, kind", [
    ("wine", "words"),
    ("Wine quality", "words"),
    ("wine in production", "words"),
    ("i like wine", "words"),
    ("churn!", "words"),
    ("name = 'wine'", "filter"),
    ("name LIKE 'wi%'", "filter"),
    ("name LIKE", "filter"),
    ("stage IN ('Production')", "filter"),
    ("metrics.auc > 0.9", "filter"),
])
def test_the_box_tells_words_from_a_filter_expression(text, kind):
    assert understand(text).kind == kind


def test_words_are_deduplicated_case_insensitively_and_bounded():
    assert understand("Wine wine WINE 'red'").words == ("Wine", "red")
    assert understand("   ") is None
    with pytest.raises(InvalidInput, match="limit is 16"):
        understand(" ".join(f"w{i}" for i in range(17)))
    with pytest.raises(InvalidInput, match="control character"):
        understand("wine\x07")


@pytest.fixture
def corpus(owner, make_version):
    wine = services.model_create(actor=owner, name="wine-quality", description="Scores red and white **wines**.")
    services.model_create(actor=owner, name="churn", description="Predicts churn.", tags={"domain": "Vineyard Wine"})
    fraud = services.model_create(actor=owner, name="fraud", description="Card fraud.")
    make_version(wine, description="first cut")
    make_version(wine, description="retrained on the 2026 harvest")
    make_version(fraud, description="nothing about drinks", tags={"dataset": "WINE-2026"})
    return wine


def _names(response) -> set[str]:
    return set(re.findall(r'class="model-name" href="/models/([^/]+)/"', response.content.decode()))


def test_a_plain_word_searches_names_descriptions_and_tag_values(owner, corpus):
    client = Client()
    client.force_login(owner)
    response = client.get("/", {"q": "wine"})
    assert response.status_code == 200
    assert _names(response) == {"wine-quality", "churn"}  # name and description; a tag value, in another case
    body = response.content.decode()
    assert "Searched for the word “wine” in names, descriptions and tag values." in body
    assert _names(client.get("/", {"q": "WINE white"})) == {"wine-quality"}  # every word must appear
    assert _names(client.get("/", {"q": "wine nothing-like-this"})) == set()


def test_the_same_box_takes_a_filter_expression_and_says_so(owner, corpus):
    client = Client()
    client.force_login(owner)
    response = client.get("/", {"q": "name LIKE 'chu%'"})
    assert _names(response) == {"churn"}
    assert "Searched with the filter expression name LIKE &#x27;chu%&#x27;." in response.content.decode()
    response = client.get("/", {"q": "colour = 'red'"})
    assert response.status_code == 400 and "Unknown field" in response.content.decode()


def test_the_api_takes_q_beside_filter(owner, corpus, api_client_for):
    api = api_client_for(owner)
    names = {row["name"] for row in api.get("/api/v1/models", {"q": "wine"}).json()["results"]}
    assert names == {"wine-quality", "churn"}
    both = api.get("/api/v1/models", {"q": "wine", "filter": "name LIKE 'wine%'"}).json()["results"]
    assert [row["name"] for row in both] == ["wine-quality"]

    versions = api.get("/api/v1/models/wine-quality/versions", {"q": "harvest"}).json()["results"]
    assert [row["version"] for row in versions] == [2]
    across = api.get("/api/v1/versions", {"q": "wine"}).json()["results"]
    # model name "wine-quality" (both versions) and fraud's version tagged WINE-2026
    assert sorted((row["model"], row["version"]) for row in across) == [
        ("fraud", 1), ("wine-quality", 1), ("wine-quality", 2)]


@pytest.mark.parametrize("q, message", [
    (" ".join(f"w{i}" for i in range(17)), "limit is 16"),
    ("x" * 201, "limit is 200"),
    ("wine\x01", "control character"),
])
def test_bad_words_are_a_400_in_the_api_error_shape(owner, corpus, api_client_for, q, message):
    api = api_client_for(owner)
    for url in ("/api/v1/models", "/api/v1/versions"):
        response = api.get(url, {"q": q})
        assert response.status_code == 400, response.content
        assert message in response.json()["error"]["message"]


def test_word_search_sees_only_visible_models(outsider, corpus, api_client_for):
    assert api_client_for(outsider).get("/api/v1/models", {"q": "wine"}).json()["results"] == []
    assert api_client_for(outsider).get("/api/v1/versions", {"q": "wine"}).json()["results"] == []


def test_a_page_of_word_results_is_a_fixed_number_of_queries(owner, api_client_for, make_version):
    api = api_client_for(owner)
    api.get("/api/v1/models")  # the token's first use is looked up and cached; pages after it are what counts

    def count(n_models: int) -> tuple[int, int]:
        for i in range(n_models):
            model = services.model_create(actor=owner, name=f"wine-{n_models}-{i}", tags={"k": "wine"})
            make_version(model, tags={"t": "wine"})
        with CaptureQueriesContext(connection) as models_page:
            assert api.get("/api/v1/models", {"q": "wine"}).status_code == 200
        with CaptureQueriesContext(connection) as versions_page:
            assert api.get("/api/v1/versions", {"q": "wine"}).status_code == 200
        return len(models_page), len(versions_page)

    assert count(2) == count(20)
