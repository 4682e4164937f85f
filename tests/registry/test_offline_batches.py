"""Offline scoring registers its prediction batches through the API: a prediction-batch node produced by the version,
the same shape as the gateway's, idempotent per output URI, with its bad inputs refused and nothing written."""

from __future__ import annotations

import pytest

from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import Role

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/churn/versions/1/prediction-batches"
BATCH = {"uri": "s3://scores/churn/2026-05-01.parquet", "row_count": 120_000,
         "window_start": "2026-05-01T00:00:00Z", "window_end": "2026-05-02T00:00:00Z",
         "input_digest": "sha256:" + "a" * 64, "output_digest": "sha256:" + "b" * 64}


@pytest.fixture
def version(registered_model, make_version):
    return make_version(registered_model, datasets=[{"name": "customers", "uri": "s3://d/c", "digest": "x"}])


def test_register_an_offline_batch(owner, version, api_client_for, captured_events):
    client = api_client_for(owner)
    response = client.post(URL, BATCH, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "prediction_batch" and body["uri"] == BATCH["uri"] and body["row_count"] == 120_000
    assert body["model"] == "churn" and body["version"] == "1" and body["window_start"].startswith("2026-05-01")
    assert body["properties"] == {"source": "offline", "input_digest": BATCH["input_digest"],
                                  "output_digest": BATCH["output_digest"]}
    node = LineageNode.objects.get(pk=body["id"])
    # The same shape as a gateway batch: scoped to the model, produced by the version's node.
    edge = LineageEdge.objects.get(downstream=node)
    assert edge.kind == EdgeKind.PRODUCED and edge.upstream.model_version == version and node.model == version.model
    event = captured_events[-1]
    assert event.action == "prediction_batch.registered" and event.data["row_count"] == 120_000
    # Downstream of the training data: data -> version -> predictions.
    customers = LineageNode.objects.get(kind=NodeKind.DATASET, name="customers")
    impact = client.get(f"/api/v1/lineage/nodes/{customers.pk}?direction=downstream&depth=3").json()
    assert node.pk in {n["id"] for n in impact["nodes"]}
    # Again: the same node (200); listed once.
    again = client.post(URL, BATCH, format="json")
    assert again.status_code == 200 and again.json()["id"] == node.pk
    listed = client.get(URL).json()["prediction_batches"]
    assert [b["id"] for b in listed] == [node.pk]


def test_a_minimal_batch_and_a_conflicting_repeat(owner, version, api_client_for):
    client = api_client_for(owner)
    response = client.post(URL, {"uri": "gs://bucket/out/part-0", "row_count": 0}, format="json")
    assert response.status_code == 201 and response.json()["window_start"] is None
    conflict = client.post(URL, {"uri": "gs://bucket/out/part-0", "row_count": 5}, format="json")
    assert conflict.status_code == 409 and "a new output has a new URI" in conflict.json()["error"]["message"]
    assert LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH).count() == 1


@pytest.mark.parametrize("payload, fragment", [
    ({**BATCH, "uri": "file:///tmp/scores.csv"}, "local paths"),
    ({**BATCH, "uri": "/tmp/scores.csv"}, "not a data location"),
    ({**BATCH, "uri": "ftp://host/x"}, "not a data location"),
    ({**BATCH, "uri": "s3://bucket/a b"}, "not a data location"),
    ({**BATCH, "uri": ""}, "uri"),
    ({**BATCH, "row_count": -1}, "row_count"),
    ({**BATCH, "row_count": "many"}, "row_count"),
    ({k: v for k, v in BATCH.items() if k != "row_count"}, "row_count"),
    ({**BATCH, "window_end": "2026-04-01T00:00:00Z"}, "window_end must not be before"),
    ({**BATCH, "window_end": None}, "both window_start and window_end"),
    ({**BATCH, "input_digest": "sha256:abc def"}, "input_digest"),
    ({**BATCH, "window_start": "yesterday"}, "window_start"),
])
def test_bad_batches_write_nothing(owner, version, api_client_for, payload, fragment):
    before = (LineageNode.objects.count(), LineageEdge.objects.count())
    response = api_client_for(owner).post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert fragment in response.content.decode()
    assert (LineageNode.objects.count(), LineageEdge.objects.count()) == before


def test_unknown_versions_and_permissions(owner, version, make_user, grant, api_client_for, registered_model):
    client = api_client_for(owner)
    assert client.post("/api/v1/models/churn/versions/7/prediction-batches", BATCH, format="json").status_code == 404
    assert client.post("/api/v1/models/nope/versions/1/prediction-batches", BATCH, format="json").status_code == 404
    assert api_client_for(make_user("stranger")).post(URL, BATCH, format="json").status_code == 404
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    assert api_client_for(viewer).post(URL, BATCH, format="json").status_code == 403
    assert api_client_for(viewer).get(URL).status_code == 200
    assert not LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH).exists()


def test_batch_list_is_a_fixed_number_of_queries(owner, version, api_client_for, django_assert_max_num_queries):
    client = api_client_for(owner)
    client.post(URL, BATCH, format="json")
    with django_assert_max_num_queries(30) as few:
        client.get(URL)
    baseline = len(few.captured_queries)  # read now: the next request resets the connection's query log
    for i in range(8):
        client.post(URL, {"uri": f"s3://scores/churn/part-{i}", "row_count": i}, format="json")
    with django_assert_max_num_queries(baseline):
        assert len(client.get(URL).json()["prediction_batches"]) == 9
