"""model-versions/search renders from column values; it must say exactly what model-versions/get says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry import services
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


def _search(api, **params):
    response = api.get("/api/2.0/mlflow/model-versions/search", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_search_rows_match_get_to_the_millisecond_and_tag(owner, api_client_for, make_version):
    api = api_client_for(owner)
    model = services.model_create(actor=owner, name="shapes")
    for i in range(5):
        make_version(model, tags={"i": str(i), "parity": "odd" if i % 2 else "even"} if i != 2 else None)
    # Microseconds on both sides of a millisecond boundary, a whole second, and dates far apart.
    stamps = [datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
              datetime(1999, 12, 31, 23, 59, 59, 1_000, tzinfo=UTC), datetime(2030, 6, 1, 0, 0, 0, 500, tzinfo=UTC),
              datetime(2026, 11, 27, 1, 2, 3, 456_789, tzinfo=UTC)]
    for number, stamp in enumerate(stamps, start=1):
        ModelVersion.objects.filter(model=model, number=number).update(created_at=stamp,
                                                                        updated_at=stamp + timedelta(microseconds=7))

    def got(number: int) -> dict:
        body = api.get("/api/2.0/mlflow/model-versions/get", {"name": "shapes", "version": str(number)}).json()
        return {k: v for k, v in body["model_version"].items() if k != "aliases"}

    whole = _search(api, filter="name='shapes'")["model_versions"]
    assert len(whole) == 5
    assert whole == [got(int(v["version"])) for v in whole]
    assert {v["version"]: v["creation_timestamp"] for v in whole}["1"] == 1767323045999
    # Rounded down to the millisecond, exactly (whole seconds are exact in a float; the rest is integer).
    def expected(shift: timedelta) -> dict[str, int]:
        return {str(n): int((s + shift).replace(microsecond=0).timestamp()) * 1000 + (s + shift).microsecond // 1000
                for n, s in enumerate(stamps, start=1)}

    assert {v["version"]: v["creation_timestamp"] for v in whole} == expected(timedelta(0))
    assert {v["version"]: v["last_updated_timestamp"] for v in whole} == expected(timedelta(microseconds=7))

    # Pages (offset, a limit that truncates) take the other tag path; they must agree as well.
    first = _search(api, filter="name='shapes'", max_results=2)
    second = _search(api, filter="name='shapes'", max_results=2, page_token=first["next_page_token"])
    assert first["model_versions"] + second["model_versions"] == whole[:4]


def test_mlflow_routes_answer_json_whatever_the_accept_header(owner, api_client_for):
    services.model_create(name="accept-any", actor=owner)
    client = api_client_for(owner)
    for accept in ("text/html", "application/xml", "*/*"):
        response = client.get("/api/2.0/mlflow/registered-models/get", {"name": "accept-any"}, HTTP_ACCEPT=accept)
        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        assert response.json()["registered_model"]["name"] == "accept-any"
