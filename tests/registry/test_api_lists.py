"""The API's model and version lists: a page costs the same queries for 1 row as for 100, whatever the search, and
its rows (rendered from plain database rows) are exactly what the detail endpoints answer."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import selectors, services

pytestmark = pytest.mark.django_db

PAGES = [
    # (url, params finding exactly one row, params finding the hundred)
    ("/api/v1/models", {"q": "needle"}, {"q": "hay"}),
    ("/api/v1/models", {"filter": "name = 'hay-000'"}, {"filter": "name LIKE 'hay-%'"}),
    ("/api/v1/models", {"q": "hay", "filter": "tags.kind = 'needle'"}, {"q": "stack", "filter": "name LIKE 'hay%'"}),
    ("/api/v1/versions", {"q": "needle"}, {"q": "hay"}),
    ("/api/v1/versions", {"filter": "tags.batch = 'needle'"}, {"filter": "tags.batch = 'hay'"}),
    ("/api/v1/versions", {"q": "lone", "filter": "version_number = 1"}, {"q": "hay", "filter": "version_number >= 1"}),
    ("/api/v1/models/hay-000/versions", {"q": "lone"}, {"q": "stack"}),
    ("/api/v1/models/hay-000/versions", {"filter": "version_number = 1"}, {"filter": "version_number >= 1"}),
]


@pytest.fixture
def haystack(owner, make_version):
    """100 models, 'hay-000' with 100 versions and every other model with one; every version has tags, a dataset,
    a run and (every tenth) an alias; one model is a successor of another, one version of another."""
    first = None
    for i in range(100):
        model = services.model_create(actor=owner, name=f"hay-{i:03d}", description=f"Hay stack {i}.",
                                      tags={"kind": "needle" if i == 7 else "hay", "team": f"t{i % 3}"})
        first = first or model
        version = make_version(model, description="lone needle" if i == 7 else "stack of hay",
                               run_id=f"{i:032x}", metrics={"auc": i / 100}, params={"depth": str(i)},
                               tags={"batch": "needle" if i == 7 else "hay", "x": "1"},
                               datasets=[{"name": f"d{i}", "uri": f"s3://d/{i}", "digest": "ab", "role": "train"}])
        if i % 10 == 0:
            services.alias_set(model=model, alias="champion", version=version, actor=owner)
    versions = [make_version(first, description="lone stack" if n == 1 else "stack", tags={"batch": "hay"},
                             run_id=f"{1000 + n:032x}") for n in range(99)]
    services.version_deprecate(version=versions[0], actor=owner, reason="old", successor=versions[1])
    services.model_deprecate(model=first, actor=owner, reason="merged",
                             successor=selectors.model_get(actor=owner, name="hay-001"))
    return first


@pytest.mark.parametrize("as_staff", [False, True], ids=["owner", "staff"])
def test_a_page_costs_the_same_queries_for_one_row_as_for_a_hundred(haystack, owner, staff, api_client_for,
                                                                     django_assert_max_num_queries, as_staff):
    api = api_client_for(staff if as_staff else owner)
    api.get("/api/v1/models", {"max_results": 1})  # the token's first use is recorded; later pages are what count
    for url, one, hundred in PAGES:
        with CaptureQueriesContext(connection) as counted:
            small = api.get(url, {**one, "max_results": 100})
        assert small.status_code == 200, small.content
        assert len(small.json()["results"]) == 1, (url, one)
        with django_assert_max_num_queries(len(counted)):
            large = api.get(url, {**hundred, "max_results": 100})
        assert large.status_code == 200, large.content
        assert len(large.json()["results"]) == 100, (url, hundred)


def test_list_rows_are_exactly_what_the_detail_endpoints_answer(haystack, owner, api_client_for):
    api = api_client_for(owner)
    models = api.get("/api/v1/models", {"max_results": 1000}).json()["results"]
    assert len(models) == 100
    for row in models[:12]:
        assert row == api.get(f"/api/v1/models/{row['name']}").json()
    assert models[0]["successor"] == "hay-001" and models[0]["aliases"] == {"champion": 1}
    versions = api.get("/api/v1/models/hay-000/versions", {"max_results": 1000}).json()["results"]
    assert len(versions) == 100
    across = api.get("/api/v1/versions", {"max_results": 30}).json()["results"]
    for row in versions[-3:] + versions[:3] + across:
        detail = api.get(f"/api/v1/models/{row['model']}/versions/{row['version']}").json()
        assert row == detail
        assert list(row) == list(detail)  # the same keys in the same order
    assert any(row["successor"] for row in versions) and any(row["aliases"] for row in versions)
    assert any(row["datasets"] for row in versions) and all(row["run_verified"] is False for row in across)


def test_model_output_renders_exactly_as_drf_would(haystack, owner):
    """ModelOutput renders by hand for speed; it must match DRF's rendering of its own field declarations."""
    from django.db.models import Prefetch
    from rest_framework import serializers

    from registry.api.serializers import ModelOutput
    from registry.models import Alias, RegisteredModel

    for model in (RegisteredModel.objects.select_related("owner", "successor")
                  .prefetch_related("tags", Prefetch("aliases", queryset=Alias.objects.select_related("version")))
                  .filter(name__in=["hay-000", "hay-001", "hay-007"])):
        ours = ModelOutput(model).data
        assert ours == serializers.Serializer.to_representation(ModelOutput(model), model)
        assert list(ours) == list(ModelOutput().fields)
