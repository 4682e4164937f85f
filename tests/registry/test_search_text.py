"""The versions' maintained search column: every write path keeps it current, and word search reads only it."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Upper

from registry import selectors, services
from registry.models import ModelVersion, VersionTag
from registry.search.text import version_search_fill
from registry.search.words import version_words_q

pytestmark = pytest.mark.django_db


def expected(version: ModelVersion) -> str:
    """What the column must hold, read afresh from the rows word search used to join, upper-cased by the database."""
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    values = list(version.tags.order_by("key").values_list("value", flat=True))
    raw = "\n".join([version.model.name, version.description, *values])
    return ModelVersion.objects.annotate(folded=Upper(Value(raw))).values_list("folded", flat=True).first()


def stored(version: ModelVersion) -> str:
    return ModelVersion.objects.values_list("search_text", flat=True).get(pk=version.pk)


def found(api, q: str) -> list[tuple[str, int]]:
    response = api.get("/api/v1/versions", {"q": q})
    assert response.status_code == 200, response.content
    return sorted((row["model"], row["version"]) for row in response.json()["results"])


@pytest.fixture
def wine(owner):
    return services.model_create(actor=owner, name="wine-quality", description="the model's own description")


# ------------------------------------------------------------------------------------------------ services


def test_a_new_version_holds_its_model_name_description_and_tag_values(owner, wine, make_version):
    version = make_version(wine, description="first cut", tags={"b": "Harvest-2026", "a": "red"})
    assert stored(version) == "WINE-QUALITY\nFIRST CUT\nRED\nHARVEST-2026" == expected(version)


def test_a_description_edit_is_searchable_at_once(owner, wine, make_version, api_client_for):
    version = make_version(wine, description="first cut", tags={"k": "red"})
    services.version_update(version=version, actor=owner, description="retrained on the harvest")
    assert stored(version) == expected(version) == "WINE-QUALITY\nRETRAINED ON THE HARVEST\nRED"
    api = api_client_for(owner)
    assert found(api, "harvest") == [("wine-quality", 1)]
    assert found(api, "cut") == []


def test_an_edit_of_other_fields_keeps_the_search_text(owner, wine, make_version):
    version = make_version(wine, description="first cut", tags={"k": "red"})
    services.version_update(version=version, actor=owner, semver="1.0.0", run_id="abc")
    assert stored(version) == expected(version) == "WINE-QUALITY\nFIRST CUT\nRED"


def test_setting_replacing_and_deleting_a_tag_keep_the_search_text_current(owner, wine, make_version,
                                                                           api_client_for):
    version = make_version(wine)
    api = api_client_for(owner)
    services.version_tag_set(version=version, actor=owner, key="dataset", value="Vineyard-A")
    assert stored(version) == expected(version)
    assert found(api, "vineyard") == [("wine-quality", 1)]
    services.version_tag_set(version=version, actor=owner, key="dataset", value="Orchard-B")
    assert stored(version) == expected(version)
    assert found(api, "vineyard") == [] and found(api, "orchard") == [("wine-quality", 1)]
    services.version_tag_delete(version=version, actor=owner, key="dataset")
    assert stored(version) == expected(version) == "WINE-QUALITY\n"
    assert found(api, "orchard") == []


def test_a_model_rename_reaches_every_version(owner, wine, make_version, api_client_for):
    versions = [make_version(wine, description=f"cut {i}", tags={"k": f"v{i}"}) for i in range(3)]
    other = make_version(services.model_create(actor=owner, name="churn"), description="wine-free")
    services.model_rename(model=wine, actor=owner, new_name="grape-scores")
    assert all(stored(v) == expected(v) and stored(v).startswith("GRAPE-SCORES\n") for v in versions)
    assert stored(other) == expected(other) == "CHURN\nWINE-FREE"
    api = api_client_for(owner)
    assert found(api, "grape") == [("grape-scores", 1), ("grape-scores", 2), ("grape-scores", 3)]
    assert found(api, "quality") == []


def test_a_word_never_matches_across_two_parts(owner, make_version, api_client_for):
    model = services.model_create(actor=owner, name="abc")
    make_version(model, description="def", tags={"k": "ghi"})
    api = api_client_for(owner)
    for word in ("abc", "DEF", "ghi", "bc", "abc def ghi"):
        assert found(api, word) == [("abc", 1)], word
    for word in ("cdef", "abcdef", "fgh"):  # joined parts would hold these; no part does
        assert found(api, word) == [], word


# ------------------------------------------------------------------------------------------------ native API


def test_every_native_api_write_keeps_the_search_text_current(owner, api_client_for):
    api = api_client_for(owner)
    assert api.post("/api/v1/models", {"name": "fraud"}, format="json").status_code == 201
    created = api.post("/api/v1/models/fraud/versions", {"description": "card fraud", "tags": {"t": "Ledger"}},
                       format="json")
    assert created.status_code == 201, created.content
    version = ModelVersion.objects.get(model__name="fraud", number=1)
    assert stored(version) == expected(version) == "FRAUD\nCARD FRAUD\nLEDGER"

    steps = [
        ("patch", "/api/v1/models/fraud/versions/1", {"description": "wire fraud"}, "wire"),
        ("put", "/api/v1/models/fraud/versions/1/tags/source", {"value": "Swift-feed"}, "swift"),
        ("delete", "/api/v1/models/fraud/versions/1/tags/t", None, None),
        ("post", "/api/v1/models/fraud/rename", {"new_name": "payments-fraud"}, "payments"),
    ]
    for method, url, body, word in steps:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code in (200, 204), (url, response.content)
        assert stored(version) == expected(version), url
        if word:
            assert found(api, word) == [(ModelVersion.objects.get(pk=version.pk).model.name, 1)], url
    assert stored(version) == "PAYMENTS-FRAUD\nWIRE FRAUD\nSWIFT-FEED"
    assert found(api, "ledger") == [] and found(api, "card") == []


# ------------------------------------------------------------------------------------------------ MLflow API


def test_every_mlflow_write_keeps_the_search_text_current(owner, api_client_for):
    api = api_client_for(owner)
    base = "/api/2.0/mlflow/"
    assert api.post(base + "registered-models/create", {"name": "churn"}, format="json").status_code == 200
    response = api.post(base + "model-versions/create", {
        "name": "churn", "source": "s3://bucket/churn/model", "description": "weekly churn",
        "tags": [{"key": "team", "value": "Retention"}]}, format="json")
    assert response.status_code == 200, response.content
    version = ModelVersion.objects.get(model__name="churn", number=1)
    assert stored(version) == expected(version) == "CHURN\nWEEKLY CHURN\nRETENTION"

    steps = [
        ("patch", "model-versions/update", {"name": "churn", "version": "1", "description": "daily churn"}),
        ("post", "model-versions/set-tag", {"name": "churn", "version": "1", "key": "region", "value": "Nordics"}),
        ("delete", "model-versions/delete-tag", {"name": "churn", "version": "1", "key": "team"}),
        ("post", "registered-models/rename", {"name": "churn", "new_name": "attrition"}),
    ]
    for method, path, body in steps:
        response = getattr(api, method)(base + path, body, format="json")
        assert response.status_code == 200, (path, response.content)
        assert stored(version) == expected(version), path
    assert stored(version) == "ATTRITION\nDAILY CHURN\nNORDICS"
    assert found(api, "nordics daily attrition") == [("attrition", 1)]
    assert found(api, "retention") == [] and found(api, "weekly") == []


# ------------------------------------------------------------------------------------------------ filling


def test_the_fill_recomputes_what_bulk_writes_left_out(owner, wine, make_version):
    versions = [make_version(wine, description=f"cut {i}", tags={"k": f"v{i}", "a": "x"}) for i in range(5)]
    ModelVersion.objects.update(search_text="")
    assert version_search_fill(ModelVersion.objects.all(), batch=2) == 5
    assert [stored(v) for v in versions] == [expected(v) for v in versions]
    assert stored(versions[0]) == "WINE-QUALITY\nCUT 0\nX\nV0"


def test_the_migration_fills_existing_versions(owner, wine, make_version):
    version = make_version(wine, description="first cut", tags={"k": "red"})
    ModelVersion.objects.update(search_text="")
    migration = importlib.import_module("registry.migrations.0015_version_search_text")
    migration.fill(apps, SimpleNamespace(connection=connection))  # all it reads of a schema editor
    assert stored(version) == expected(version) == "WINE-QUALITY\nFIRST CUT\nRED"


def test_version_lists_leave_the_column_unread(owner, wine, make_version):
    make_version(wine, description="x" * 1000)
    listed = list(selectors.version_list(actor=owner, model=wine))
    assert listed and all("search_text" in version.get_deferred_fields() for version in listed)


def _former_words_q(words: tuple[str, ...]) -> Q:
    """The word search before the column: each word in the model name, the description or a tag value."""
    q = Q()
    for word in words:
        tags = VersionTag.objects.filter(version=OuterRef("pk"), value__icontains=word)
        q &= Q(model__name__icontains=word) | Q(description__icontains=word) | Q(Exists(tags))
    return q


def test_the_column_finds_what_the_former_search_found(owner, make_version):
    cases = {"Wine-Été": ("Straße und Ärger", {"k": "ROSÉ", "z": "100%_sure"}),
             "churn": ("ÉTÉ churn\twith tabs", {"k": "straSSe"}), "ärger": ("", {})}
    for name, (description, tags) in cases.items():
        make_version(services.model_create(actor=owner, name=name), description=description, tags=tags)
    words = ["wine", "WINE-été", "été", "ÉTÉ", "straße", "STRASSE", "ärger", "ÄRGER", "rosé", "100%", "%", "_s",
             "0%_", "churn", "tabs", "with", "k", "é", "ä", "with\ttabs"]
    for word in words:
        for combo in ((word,), (word, "e")):
            new = set(ModelVersion.objects.filter(version_words_q(combo)).values_list("pk", flat=True))
            old = set(ModelVersion.objects.filter(_former_words_q(combo)).values_list("pk", flat=True))
            assert new == old, combo
