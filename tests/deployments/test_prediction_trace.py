"""Lineage to production inference: every gateway answer carries a request id that traces back to the version that
answered it, its routing role and generation, its prediction batch, and what that version was built from."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from deployments import services, serving
from deployments.models import PredictionBatch, PredictionRecord
from deployments.serving import recording
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind

pytestmark = pytest.mark.django_db

ROW = [5.1, 3.5, 1.4, 0.2]
NAME = "churn-staging"


@pytest.fixture
def live(servable_version, registered_model, endpoint, owner):
    version = servable_version(registered_model, datasets=[{"name": "customers", "uri": "s3://data/customers",
                                                            "digest": "sha256:abc", "role": "train"}],
                               code_repository="https://git.example/churn", code_commit="a" * 40)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    return version


def test_a_callers_well_formed_request_id_is_honoured_and_traced(live, predict, api_client_for, owner, endpoint):
    response = predict(NAME, {"rows": [ROW, ROW]}, **{"X-Request-Id": "order-4711.try-1"})
    assert response.status_code == 200 and response["X-Request-Id"] == "order-4711.try-1"
    assert not PredictionRecord.objects.exists(), "nothing is written on the request path"
    serving.drain()

    trace = api_client_for(owner).get("/api/v1/predictions/order-4711.try-1").json()
    assert trace["model"] == "churn" and trace["version"] == live.number and trace["endpoint"] == NAME
    assert trace["routing_role"] == "stable" and trace["traffic_role"] == "live"
    assert trace["routing_generation"] == endpoint.__class__.objects.get(pk=endpoint.pk).generation
    assert trace["datasets"] == [{"role": "train", "name": "customers", "uri": "s3://data/customers",
                                  "digest": "sha256:abc"}]
    assert trace["code"] == {"repository": "https://git.example/churn", "commit": "a" * 40}
    assert trace["signature_digest"] and trace["approvals"] == []
    assert trace["links"]["version"] == f"/models/churn/versions/{live.number}/"
    batch = trace["prediction_batch"]
    assert batch["requests"] == 1 and batch["rows"] == 2 and len(batch["input_schema_digest"]) == 64

    # The batch is a lineage node produced by the version and by the deployment that routed it.
    node = LineageNode.objects.get(pk=batch["lineage_node"])
    assert node.kind == NodeKind.PREDICTION_BATCH and node.endpoint == NAME
    producers = {e.upstream.kind for e in LineageEdge.objects.filter(downstream=node, kind=EdgeKind.PRODUCED)
                 .select_related("upstream")}
    assert producers == {NodeKind.MODEL_VERSION, NodeKind.DEPLOYMENT}


def test_requests_of_one_window_share_one_batch_and_a_flush_writes_a_fixed_number_of_queries(
        live, predict, django_assert_max_num_queries):
    ids = [predict(NAME, {"rows": [ROW]}).json()["request_id"] for _ in range(5)]
    with django_assert_max_num_queries(16):
        serving.drain()
    records = PredictionRecord.objects.filter(request_id__in=ids)
    assert records.count() == 5
    assert len({r.batch_id for r in records}) <= 2  # one window (two if the run crossed a 5-minute boundary)
    for _ in range(20):
        predict(NAME, {"rows": [ROW]})
    with django_assert_max_num_queries(16):
        serving.drain()
    # A later flush of the same window adds to its batch instead of making another node.
    batches = LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH)
    assert batches.count() <= 2 and sum(b.properties["requests"] for b in batches) == 25
    assert sum(b.row_count for b in batches) == 25
    # ... and its records name the routing row the first flush wrote: one per lineage batch, not one per request.
    assert PredictionBatch.objects.count() == batches.count()
    assert set(PredictionBatch.objects.values_list("node", flat=True)) == set(batches.values_list("pk", flat=True))


def test_a_trace_record_holds_only_its_request_id_batch_and_time(live, predict, endpoint):
    assert {f.attname for f in PredictionRecord._meta.concrete_fields} == {"id", "request_id", "batch_id", "at"}
    rid = predict(NAME, {"rows": [ROW]}).json()["request_id"]
    serving.drain()
    batch = PredictionRecord.objects.select_related("batch").get(request_id=rid).batch
    assert (batch.endpoint_id, batch.version_id, batch.role, batch.route_role) == (endpoint.pk, live.pk, "live",
                                                                                   "stable")
    assert batch.deployment.endpoint_id == endpoint.pk and batch.generation == endpoint.__class__.objects.get(
        pk=endpoint.pk).generation
    assert batch.node.kind == NodeKind.PREDICTION_BATCH


@pytest.mark.parametrize("header", ["x" * 10_000, "abc", "bad id with spaces", "id\u00e9-unicode-0001",
                                    "id\x00with-nul-0001", "id\x1bescape-0001", "id-with-del\x7f-0001",
                                    "order-4711\t"])
def test_a_malformed_request_id_is_refused_and_nothing_is_recorded(live, predict, header):
    response = predict(NAME, {"rows": [ROW]}, **{"X-Request-Id": header})
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "X-Request-Id" in response.json()["error"]["message"]
    serving.drain()
    assert not PredictionRecord.objects.exists()


def test_unknown_expired_hidden_and_malformed_ids(live, predict, api_client_for, owner, outsider, settings):
    rid = predict(NAME, {"rows": [ROW]}).json()["request_id"]
    serving.drain()
    api = api_client_for(owner)
    assert api.get("/api/v1/predictions/no-such-request").status_code == 404
    assert api.get("/api/v1/predictions/no-such-request").json()["error"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert api_client_for(outsider).get(f"/api/v1/predictions/{rid}").status_code == 404
    bad = api.get("/api/v1/predictions/" + "x" * 300)
    assert bad.status_code == 400 and "request id" in bad.json()["error"]["message"]
    # Past the retention window the id is forgotten (404), and the purge removes the record; the batch stays.
    PredictionRecord.objects.update(at=timezone.now() - timedelta(days=settings.STRATUM_PREDICTION_RETENTION_DAYS + 1))
    assert api.get(f"/api/v1/predictions/{rid}").status_code == 404
    assert services.prediction_records_purge() == 1
    assert LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH).count() == 1
    assert not PredictionBatch.objects.exists(), "a routing row no record names any more goes with its records"


def test_the_purge_keeps_the_batch_of_records_still_within_the_window(live, predict, settings):
    old, recent = (predict(NAME, {"rows": [ROW]}).json()["request_id"] for _ in range(2))
    serving.drain()
    PredictionRecord.objects.filter(request_id=old).update(
        at=timezone.now() - timedelta(days=settings.STRATUM_PREDICTION_RETENTION_DAYS + 1))
    assert services.prediction_records_purge() == 1
    assert list(PredictionRecord.objects.values_list("request_id", flat=True)) == [recent]
    assert PredictionBatch.objects.count() == 1


def test_shadow_copies_are_traced_as_shadow(servable_version, registered_model, endpoint, owner, predict,
                                            api_client_for):
    from tests.deployments.conftest import iris_onnx

    stable = servable_version(registered_model)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=stable.number)
    candidate = servable_version(registered_model, onnx=iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="shadow", version=candidate.number,
                              shadow_percent=100)
    rid = predict(NAME, {"rows": [ROW]}).json()["request_id"]
    serving.drain()
    trace = api_client_for(owner).get(f"/api/v1/predictions/{rid}").json()
    assert trace["version"] == stable.number and trace["traffic_role"] == "live"
    shadow = PredictionRecord.objects.select_related("batch").get(request_id=rid, batch__role="shadow")
    assert shadow.batch.version_id == candidate.pk and shadow.batch.route_role == "shadow"
    client = Client()
    client.force_login(owner)
    body = client.get(f"/predictions/{rid}/").content.decode()
    assert f"also names 1 other record: churn v{candidate.number} (shadow)" in body


def test_the_trace_page(live, predict, owner):
    rid = predict(NAME, {"rows": [ROW]}).json()["request_id"]
    serving.drain()
    client = Client()
    client.force_login(owner)
    assert client.get("/predictions/", {"id": rid})["Location"] == f"/predictions/{rid}/"
    page = client.get(f"/predictions/{rid}/")
    body = page.content.decode()
    assert page.status_code == 200
    assert f'href="/models/churn/versions/{live.number}/"' in body and "customers" in body and "stable" in body
    missing = client.get("/predictions/no-such-request/")
    assert missing.status_code == 404 and "No prediction with request id" in missing.content.decode()


def test_with_prediction_batches_off_requests_are_counted_but_not_traced(live, predict, settings):
    from deployments.models import TrafficStat

    settings.STRATUM_PREDICTION_BATCHES = False
    response = predict(NAME, {"rows": [ROW]})
    assert response.status_code == 200
    serving.drain()
    assert TrafficStat.objects.filter(requests=1).exists()  # the rollout monitor still sees the request
    assert not PredictionRecord.objects.exists()
    assert not LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH).exists()
    settings.STRATUM_PREDICTION_BATCHES = True
    predict(NAME, {"rows": [ROW]})
    serving.drain()
    assert PredictionRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_records_written_before_it_their_batch(make_version, registered_model, endpoint):
    """Records of the old, wide shape keep tracing: 0005 makes one batch per distinct shared part."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    version = make_version(registered_model)
    node = LineageNode.objects.create(kind=NodeKind.PREDICTION_BATCH, key="b" * 64, name="old batch",
                                      model=registered_model)
    before = [("deployments", "0003_prediction_records")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("deployments", "PredictionRecord")
    now = timezone.now()
    shared = {"endpoint_id": endpoint.pk, "version_id": version.pk, "batch_id": node.pk, "generation": 3}
    old.objects.create(request_id="old-live-0001", role="live", route_role="stable", at=now, **shared)
    old.objects.create(request_id="old-live-0002", role="live", route_role="stable", at=now, **shared)
    old.objects.create(request_id="old-live-0001", role="shadow", route_role="shadow", at=now, **shared)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert PredictionBatch.objects.count() == 2
    live = PredictionRecord.objects.select_related("batch").get(request_id="old-live-0002").batch
    assert (live.node_id, live.endpoint_id, live.version_id, live.role, live.route_role, live.generation,
            live.deployment_id) == (node.pk, endpoint.pk, version.pk, "live", "stable", 3, None)
    assert PredictionRecord.objects.get(request_id="old-live-0001", batch__role="shadow").batch.route_role == "shadow"
    assert PredictionRecord.objects.filter(batch=live).count() == 2

    # And back: the records get their columns again (then forward, as every other test expects the schema).
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("deployments", "PredictionRecord")
    assert sorted(old.objects.values_list("request_id", "role", "route_role", "generation", "batch_id",
                                          "version_id")) == [
        ("old-live-0001", "live", "stable", 3, node.pk, version.pk),
        ("old-live-0001", "shadow", "shadow", 3, node.pk, version.pk),
        ("old-live-0002", "live", "stable", 3, node.pk, version.pk)]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(False)
def test_flushes_of_one_process_never_overlap(monkeypatch):
    """A batch's identity includes the process: the background thread's flush and a drain side by side would both
    create the window's node (a unique-key failure seen in CI). They take turns."""
    recorder = recording.Recorder()
    inside, most = [0], [0]
    guard = threading.Lock()

    def slow_flush() -> int:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with guard:
            inside[0] -= 1
        return 0

    monkeypatch.setattr(recorder, "_flush", slow_flush)
    threads = [threading.Thread(target=recorder.flush) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
