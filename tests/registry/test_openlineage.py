"""OpenLineage in and out: events of the shapes Airflow, Spark and dbt emit become datasets, feature sets and edges;
bad events are refused whole; a version's lineage goes out as run events the openlineage client accepts."""

from __future__ import annotations

import copy
import uuid

import pytest
from openlineage.client import event_v2

from registry.lineage import services as lineage_services
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.lineage.openlineage import parse_run_event

pytestmark = pytest.mark.django_db

SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

# An Airflow (SQLExecuteQueryOperator) COMPLETE event: two Postgres tables in, one out.
AIRFLOW = {
    "eventType": "COMPLETE", "eventTime": "2026-11-30T10:15:03.123456+00:00",
    "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0", "schemaURL": SCHEMA,
    "run": {"runId": "0194b1c2-7a3e-7c1d-9e2f-6a1b2c3d4e5f", "facets": {
        "parent": {"job": {"namespace": "airflow-prod", "name": "churn_features"},
                   "run": {"runId": "0194b1c2-0000-7000-8000-000000000001"}}}},
    "job": {"namespace": "airflow-prod", "name": "churn_features.build_customer_table",
            "facets": {"jobType": {"processingType": "BATCH", "integration": "AIRFLOW", "jobType": "TASK"}}},
    "inputs": [{"namespace": "postgres://warehouse.internal:5432", "name": "crm.public.customers",
                "facets": {"schema": {"fields": [{"name": "customer_id", "type": "integer"},
                                                 {"name": "email", "type": "text"}]}}},
               {"namespace": "postgres://warehouse.internal:5432", "name": "crm.public.orders"}],
    "outputs": [{"namespace": "postgres://warehouse.internal:5432", "name": "analytics.public.customer_activity",
                 "facets": {"version": {"datasetVersion": "2026-11-30"}}}],
}

# A Spark job writing a feature set (marked with Stratum's facet) from the table above.
SPARK = {
    "eventType": "COMPLETE", "eventTime": "2026-11-30T11:00:00Z",
    "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/spark", "schemaURL": SCHEMA,
    "run": {"runId": str(uuid.uuid4())},
    "job": {"namespace": "spark-cluster", "name": "churn_feature_job.execute_insert_into_hadoop_fs_relation"},
    "inputs": [{"namespace": "postgres://warehouse.internal:5432", "name": "analytics.public.customer_activity",
                "facets": {"version": {"datasetVersion": "2026-11-30"}}}],
    "outputs": [{"namespace": "s3://features", "name": "churn/customer_features",
                 "facets": {"stratum": {"kind": "feature_set", "version": "v7"},
                            "schema": {"fields": [{"name": "days_since_order", "type": "int"}]}}}],
}

# dbt's START event: acknowledged, records nothing.
DBT_START = {
    "eventType": "START", "eventTime": "2026-11-30T09:00:00.000000Z",
    "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt", "schemaURL": SCHEMA,
    "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "dbt", "name": "jaffle_shop.model.stg_orders"},
    "inputs": [{"namespace": "snowflake://acme.eu-west-1", "name": "raw.jaffle.orders"}],
    "outputs": [{"namespace": "snowflake://acme.eu-west-1", "name": "analytics.jaffle.stg_orders"}],
}


def test_airflow_spark_and_dbt_events_build_the_chain(owner, api_client_for, registered_model, make_version):
    api = api_client_for(owner)
    first = api.post("/api/v1/lineage/openlineage", AIRFLOW, format="json")
    assert first.status_code == 201, first.content
    assert len(first.json()["nodes"]) == 3 and len(first.json()["edges"]) == 2
    again = api.post("/api/v1/lineage/openlineage", AIRFLOW, format="json")  # idempotent: the same nodes
    assert again.json()["nodes"] == first.json()["nodes"]
    assert api.post("/api/v1/lineage/openlineage", SPARK, format="json").status_code == 201
    assert api.post("/api/v1/lineage/openlineage", DBT_START, format="json").json()["recorded"] is False

    table = LineageNode.objects.get(kind=NodeKind.DATASET, name="analytics.public.customer_activity")
    assert table.version == "2026-11-30" and table.uri.startswith("postgres://warehouse.internal:5432/")
    assert "airflow-prod/churn_features.build_customer_table@" in table.transformation_ref
    features = LineageNode.objects.get(kind=NodeKind.FEATURE_SET)
    assert (features.name, features.version) == ("churn/customer_features", "v7")
    assert features.schema == {"fields": [{"name": "days_since_order", "type": "int"}]}
    assert LineageEdge.objects.filter(upstream=table, downstream=features, kind=EdgeKind.DERIVED_FROM).exists()
    assert not LineageNode.objects.filter(name="analytics.jaffle.stg_orders").exists()

    # The version trained on the feature set; its lineage goes out as OpenLineage events.
    version = make_version(registered_model)
    node, _ = lineage_services.version_node_ensure(version)
    lineage_services.edge_create(actor=owner, upstream=features, downstream=node, kind=EdgeKind.USES_FEATURES)
    out = api.get("/api/v1/lineage/models/churn/versions/1/openlineage").json()["events"]
    assert len(out) == 1
    event = out[0]
    assert event["eventType"] == "COMPLETE" and event["job"] == {"namespace": "stratum", "name": "models/churn/train",
                                                                  "facets": {}}
    assert (event["inputs"][0]["namespace"], event["inputs"][0]["name"]) == ("s3://features", "churn/customer_features")
    assert event["outputs"][0]["name"] == "models/churn/versions/1"
    assert parse_run_event(event).run.runId == event["run"]["runId"]  # what goes out, comes back in
    assert isinstance(parse_run_event(event), event_v2.RunEvent)


def _broken(change) -> dict:
    event = copy.deepcopy(AIRFLOW)
    change(event)
    return event


@pytest.mark.parametrize("event, fragment", [
    ([], "JSON object"),
    (_broken(lambda e: e.pop("run")), "run and job are required"),
    (_broken(lambda e: e["run"].update(runId="not-a-uuid")), "OpenLineage event"),
    (_broken(lambda e: e.update(eventTime="yesterday")), "OpenLineage event"),
    (_broken(lambda e: e.update(eventType="FINISHED")), "eventType"),
    (_broken(lambda e: e["inputs"][0].update(namespace="file:///etc")), "unknown dataset namespace"),
    (_broken(lambda e: e["inputs"][0].update(namespace="mystery://x")), "unknown dataset namespace"),
    (_broken(lambda e: e["outputs"][0].update(name="x" * 600)), "longer than 500"),
    (_broken(lambda e: e["outputs"][0].update(name="bad\x00name")), "control characters"),
    (_broken(lambda e: e.update(inputs=[{"namespace": "s3://b", "name": f"t{i}"} for i in range(201)])),
     "at most 200"),
])
def test_malformed_events_are_a_400_and_write_nothing(owner, api_client_for, event, fragment):
    response = api_client_for(owner).post("/api/v1/lineage/openlineage", event, format="json")
    assert response.status_code == 400, response.content
    assert fragment in response.json()["error"]["message"]
    assert not LineageNode.objects.exists()


def test_a_cycle_is_refused_whole(owner, api_client_for, registered_model):
    api = api_client_for(owner)
    assert api.post("/api/v1/lineage/openlineage", AIRFLOW, format="json").status_code == 201
    nodes, edges = LineageNode.objects.count(), LineageEdge.objects.count()
    backwards = copy.deepcopy(AIRFLOW)
    backwards["run"]["runId"] = str(uuid.uuid4())
    backwards["inputs"], backwards["outputs"] = AIRFLOW["outputs"], [
        {"namespace": "postgres://warehouse.internal:5432", "name": "crm.public.orders"},
        {"namespace": "postgres://warehouse.internal:5432", "name": "crm.public.refunds"}]
    response = api.post("/api/v1/lineage/openlineage", backwards, format="json")
    assert response.status_code == 409 and "cycle" in response.json()["error"]["message"]
    assert (LineageNode.objects.count(), LineageEdge.objects.count()) == (nodes, edges)  # not even refunds


def test_only_lineage_writers_may_post_events(outsider, api_client_for):
    response = api_client_for(outsider).post("/api/v1/lineage/openlineage", AIRFLOW, format="json")
    assert response.status_code == 403
    assert not LineageNode.objects.exists()
