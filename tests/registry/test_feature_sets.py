"""Feature sets as provenance: declared through the API (on registration and later), the version form and the stock
mlflow client (dataset inputs with context "features"); lineage reads dataset -> feature set -> version."""

from __future__ import annotations

import pytest

from registry.lineage import features
from registry.lineage import services as lineage
from registry.lineage.models import EdgeKind, LineageEdge, LineageNode, NodeKind
from registry.models import ModelVersion, Role
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

CUSTOMER_FEATURES = {
    "name": "customer_features", "version": "3", "derived_from": ["customers@2024-05", {"name": "orders",
                                                                                        "version": "2024-05"}],
    "transformation_ref": "git+https://github.com/acme/features@4f2a9c1#featurize.py",
    "schema": {"fields": [{"name": "tenure_days", "type": "int"}]},
}


def _chain(version: ModelVersion) -> set[tuple[str, str, str, str]]:
    """Return (upstream kind, upstream label, edge kind, downstream label) for every edge above the version."""
    node = LineageNode.objects.get(model_version=version)
    fs_ids = LineageEdge.objects.filter(downstream=node, kind=EdgeKind.USES_FEATURES).values_list("upstream_id")
    edges = LineageEdge.objects.filter(downstream_id__in=[node.pk, *[i for (i,) in fs_ids]]).select_related(
        "upstream", "downstream")
    return {(e.upstream.kind, f"{e.upstream.name}@{e.upstream.version}", e.kind,
             f"{e.downstream.name}@{e.downstream.version}") for e in edges}


# ------------------------------------------------------------------------------------------------- API


def test_register_a_version_with_feature_sets(owner, registered_model, api_client_for, captured_events):
    client = api_client_for(owner)
    response = client.post("/api/v1/models/churn/versions", {"feature_sets": [CUSTOMER_FEATURES]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    [fs] = body["feature_sets"]
    assert (fs["name"], fs["version"], fs["transformation_ref"]) == ("customer_features", "3",
                                                                     CUSTOMER_FEATURES["transformation_ref"])
    assert [(d["kind"], d["name"], d["version"]) for d in fs["derived_from"]] == [
        ("dataset", "customers", "2024-05"), ("dataset", "orders", "2024-05")]
    version = ModelVersion.objects.get(model=registered_model, number=1)
    assert _chain(version) == {
        ("dataset", "customers@2024-05", "derived_from", "customer_features@3"),
        ("dataset", "orders@2024-05", "derived_from", "customer_features@3"),
        ("feature_set", "customer_features@3", "uses_features", "churn@1"),
    }
    created = [e for e in captured_events if e.action == "model_version.created"][-1]
    assert created.data["feature_sets"][0]["name"] == "customer_features"
    # The version's own representation lists them too (detail and list).
    detail = client.get("/api/v1/models/churn/versions/1").json()
    assert detail["feature_sets"] == body["feature_sets"]
    listed = client.get("/api/v1/models/churn/versions").json()["results"]
    assert listed[0]["feature_sets"] == body["feature_sets"]


def test_declare_on_an_existing_version_is_idempotent(owner, registered_model, make_version, api_client_for,
                                                     captured_events):
    version = make_version(registered_model)
    client = api_client_for(owner)
    url = "/api/v1/models/churn/versions/1/feature-sets"
    first = client.post(url, {"feature_sets": [CUSTOMER_FEATURES]}, format="json")
    assert first.status_code == 201, first.content
    assert [e.action for e in captured_events][-1] == "model_version.feature_sets_declared"
    again = client.post(url, {"feature_sets": [CUSTOMER_FEATURES]}, format="json")
    assert again.status_code == 200 and again.json()["feature_sets"] == first.json()["feature_sets"]
    assert LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).count() == 1
    assert LineageNode.objects.filter(kind=NodeKind.DATASET).count() == 2
    # A second version using the same feature set shares its node.
    make_version(registered_model, feature_sets=[CUSTOMER_FEATURES])
    assert LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).count() == 1
    assert client.get(url).json()["feature_sets"][0]["name"] == "customer_features"
    assert ("feature_set", "customer_features@3", "uses_features", "churn@1") in _chain(version)


def test_sources_resolve_to_existing_nodes_by_name_or_id(owner, registered_model, make_version, api_client_for):
    make_version(registered_model)
    raw = lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="events", version="7",
                              uri="s3://lake/events/7").obj
    client = api_client_for(owner)
    response = client.post("/api/v1/models/churn/versions/1/feature-sets", {"feature_sets": [
        {"name": "session_features", "version": "1", "derived_from": ["events@7"]},
        {"name": "sessions_by_id", "version": "1", "derived_from": [raw.pk, "session_features@1"]}]}, format="json")
    assert response.status_code == 201, response.content
    by_name = {f["name"]: f for f in response.json()["feature_sets"]}
    assert [d["node"] for d in by_name["session_features"]["derived_from"]] == [raw.pk]
    assert {d["kind"] for d in by_name["sessions_by_id"]["derived_from"]} == {"dataset", "feature_set"}
    assert LineageNode.objects.filter(kind=NodeKind.DATASET).count() == 1


def test_lineage_graph_reads_dataset_feature_set_version(owner, registered_model, make_version, api_client_for):
    make_version(registered_model, feature_sets=[CUSTOMER_FEATURES])
    client = api_client_for(owner)
    graph = client.get("/api/v1/lineage/models/churn/versions/1?direction=upstream&depth=2").json()
    kinds = {(n["kind"], n["name"]) for n in graph["nodes"]}
    assert {("feature_set", "customer_features"), ("dataset", "customers"), ("dataset", "orders")} <= kinds


def test_openlineage_export_names_declared_feature_sets_as_training_inputs(owner, registered_model, make_version,
                                                                          api_client_for):
    make_version(registered_model, feature_sets=[{**CUSTOMER_FEATURES, "uri": "s3://features/customer_features"}])
    events = api_client_for(owner).get("/api/v1/lineage/models/churn/versions/1/openlineage").json()["events"]
    [train] = [e for e in events if e["job"]["name"] == "models/churn/train"]
    assert {(i["namespace"], i["name"]) for i in train["inputs"]} == {("s3://features", "customer_features")}


def test_version_list_reads_feature_sets_in_a_fixed_number_of_queries(owner, registered_model, make_version,
                                                                      api_client_for, django_assert_max_num_queries):
    client = api_client_for(owner)
    make_version(registered_model, feature_sets=[CUSTOMER_FEATURES])
    client.get("/api/v1/models/churn/versions")
    with django_assert_max_num_queries(30) as few:
        client.get("/api/v1/models/churn/versions")
    baseline = len(few.captured_queries)  # read now: the next request resets the connection's query log
    for i in range(6):
        make_version(registered_model, feature_sets=[{**CUSTOMER_FEATURES, "version": str(10 + i)}])
    with django_assert_max_num_queries(baseline):
        rows = client.get("/api/v1/models/churn/versions").json()["results"]
    assert len(rows) == 7 and all(len(r["feature_sets"]) == 1 for r in rows)


# -------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("payload, fragment", [
    ({"feature_sets": {"name": "x"}}, "must be a list"),
    ({"feature_sets": ["x@1"]}, "must be an object"),
    ({"feature_sets": [{"name": "x"}]}, "needs a version"),
    ({"feature_sets": [{"version": "1"}]}, "needs a name"),
    ({"feature_sets": [{"name": "x", "version": "1", "derived_from": "customers@1"}]}, "must be a list"),
    ({"feature_sets": [{"name": "x", "version": "1", "derived_from": [{"uri": "s3://a/b"}]}]}, "needs a name"),
    ({"feature_sets": [{"name": "x", "version": "1", "derived_from": [True]}]}, "node id"),
    ({"feature_sets": [{"name": "x", "version": "1", "derived_from": ["a@"]}]}, "name@version"),
    ({"feature_sets": [{"name": "x\x00", "version": "1"}]}, "control characters"),
    ({"feature_sets": [{"name": "x", "version": "1", "uri": "file:///etc/passwd"}]}, "local paths"),
    ({"feature_sets": [{"name": "x", "version": "1", "schema": "fields"}]}, "JSON object or list"),
    ({"feature_sets": [{"name": "x", "version": "1", "colour": "red"}]}, "unknown field"),
    ({"feature_sets": [{"name": "x", "version": "1"}, {"name": "x", "version": "1"}]}, "declared twice"),
    ({"feature_sets": []}, "at least one"),
    ([1, 2], "JSON object"),
])
def test_malformed_payloads_write_nothing(owner, registered_model, make_version, api_client_for, payload, fragment):
    make_version(registered_model)
    before = (LineageNode.objects.count(), LineageEdge.objects.count())
    response = api_client_for(owner).post("/api/v1/models/churn/versions/1/feature-sets", payload, format="json")
    assert response.status_code == 400, response.content
    assert fragment in response.json()["error"]["message"]
    assert (LineageNode.objects.count(), LineageEdge.objects.count()) == before


def test_every_fault_is_named_at_once(owner, registered_model, api_client_for):
    response = api_client_for(owner).post("/api/v1/models/churn/versions", {"feature_sets": [
        {"name": "a"}, {"version": "2"}, {"name": "c", "version": "3", "derived_from": [{}]}]}, format="json")
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["errors"]
    assert len(errors) == 3 and "feature_sets[0]" in errors[0] and "feature_sets[2] derived_from[0]" in errors[2]
    assert not ModelVersion.objects.exists() and not LineageNode.objects.exists()


def test_a_source_the_caller_cannot_see_is_refused_and_nothing_written(owner, registered_model, make_version,
                                                                      make_user, grant, api_client_for):
    from registry import services

    make_version(registered_model)
    secret_model = services.model_create(actor=make_user("other"), name="secret")
    secret_version = services.version_create(model=secret_model, actor=secret_model.owner)
    secret_batch = lineage.node_create(actor=secret_model.owner, kind=NodeKind.PREDICTION_BATCH, name="scores",
                                       model=secret_model).obj
    lineage.edge_create(actor=secret_model.owner, upstream=lineage.version_node_ensure(secret_version)[0],
                        downstream=secret_batch, kind=EdgeKind.PRODUCED)
    before = (LineageNode.objects.count(), LineageEdge.objects.count())
    client = api_client_for(owner)
    for ref in (secret_batch.pk, {"node": 999_999}):
        response = client.post("/api/v1/models/churn/versions/1/feature-sets", {"feature_sets": [
            {"name": "leaky", "version": "1", "derived_from": ["customers@1", ref]}]}, format="json")
        assert response.status_code == 404, response.content
        assert "which you may not see; nothing was recorded" in response.json()["error"]["message"]
    assert (LineageNode.objects.count(), LineageEdge.objects.count()) == before
    # On registration too: no version is created.
    response = client.post("/api/v1/models/churn/versions", {"feature_sets": [
        {"name": "leaky", "version": "1", "derived_from": [secret_batch.pk]}]}, format="json")
    assert response.status_code == 404 and ModelVersion.objects.filter(model=registered_model).count() == 1
    # A node that is not a dataset is refused by kind.
    version_node, _ = lineage.version_node_ensure(ModelVersion.objects.get(model=registered_model, number=1))
    response = client.post("/api/v1/models/churn/versions/1/feature-sets", {"feature_sets": [
        {"name": "odd", "version": "1", "derived_from": [version_node.pk]}]}, format="json")
    assert response.status_code == 400 and "Model version" in response.json()["error"]["message"]


def test_cycles_are_refused(owner, registered_model, make_version, api_client_for):
    make_version(registered_model)
    client = api_client_for(owner)
    url = "/api/v1/models/churn/versions/1/feature-sets"
    itself = client.post(url, {"feature_sets": [{"name": "loop", "version": "1", "derived_from": ["loop@1"]}]},
                         format="json")
    assert itself.status_code == 409 and "cannot derive from loop@1" in itself.json()["error"]["message"]
    assert not LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).exists()
    # Downstream: b derives from a; then a declared as derived from b.
    assert client.post(url, {"feature_sets": [{"name": "a", "version": "1", "derived_from": ["raw@1"]},
                                              {"name": "b", "version": "1", "derived_from": ["a@1"]}]},
                       format="json").status_code == 201
    before = (LineageNode.objects.count(), LineageEdge.objects.count())
    response = client.post(url, {"feature_sets": [{"name": "c", "version": "1", "derived_from": ["raw@1"]},
                                                  {"name": "a", "version": "1", "derived_from": ["b@1"]}]},
                           format="json")
    assert response.status_code == 409 and "cannot derive from b@1" in response.json()["error"]["message"]
    assert (LineageNode.objects.count(), LineageEdge.objects.count()) == before  # c was not kept either


def test_a_feature_set_version_cannot_change_its_definition(owner, registered_model, make_version, api_client_for):
    make_version(registered_model, feature_sets=[CUSTOMER_FEATURES])
    response = api_client_for(owner).post("/api/v1/models/churn/versions/1/feature-sets", {"feature_sets": [
        {**CUSTOMER_FEATURES, "transformation_ref": "git+https://github.com/acme/features@0000000#other.py"}]},
        format="json")
    assert response.status_code == 409 and "new version" in response.json()["error"]["message"]


def test_unknown_version_model_and_permissions(owner, registered_model, make_version, make_user, grant,
                                               api_client_for):
    make_version(registered_model)
    body = {"feature_sets": [CUSTOMER_FEATURES]}
    client = api_client_for(owner)
    assert client.post("/api/v1/models/churn/versions/9/feature-sets", body, format="json").status_code == 404
    assert client.post("/api/v1/models/nope/versions/1/feature-sets", body, format="json").status_code == 404
    assert client.get("/api/v1/models/churn/versions/9/feature-sets").status_code == 404
    outsider = make_user("stranger")
    assert api_client_for(outsider).post("/api/v1/models/churn/versions/1/feature-sets", body,
                                         format="json").status_code == 404
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    response = api_client_for(viewer).post("/api/v1/models/churn/versions/1/feature-sets", body, format="json")
    assert response.status_code == 403
    assert not LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).exists()


# ---------------------------------------------------------------------------------------------- parsing


def test_form_lines_parse_to_the_same_specs():
    specs = features.feature_set_lines_parse(
        "# features\ncustomer_features@3 <- customers@2024-05, orders@2024-05 | git+https://x/f@1#a.py\n\n"
        "plain@1\n")
    assert [(s.label(), [r.label() for r in s.derived_from], s.transformation_ref) for s in specs] == [
        ("customer_features@3", ["customers@2024-05", "orders@2024-05"], "git+https://x/f@1#a.py"),
        ("plain@1", [], "")]


def test_form_lines_name_every_bad_line():
    with pytest.raises(features.InvalidInput) as error:
        features.feature_set_lines_parse("nameonly <- a@1\nok@1 <- \nfs@2 <- a@1,,b@2\ngood@1 <- x@1\ngood@1\n")
    errors = error.value.details["errors"]
    assert [e.split(":")[0].split(" (")[0] for e in errors] == ["Line 1", "Line 2", "Line 3",
                                                                  "Feature set good@1 is declared twice."]


# ------------------------------------------------------------------------------------------------- form


def test_version_form_declares_feature_sets(client, owner, registered_model):
    client.force_login(owner)
    form = client.get("/models/churn/versions/new/").content.decode()
    assert 'name="feature_sets"' in form and "name@version &lt;- " in form
    response = client.post("/models/churn/versions/new/", {
        "feature_sets": "customer_features@3 <- customers@2024-05, orders@2024-05 | git+https://x/f@1#a.py\n"})
    assert response.status_code == 302, response.content.decode()
    version = ModelVersion.objects.get(model=registered_model, number=1)
    assert ("dataset", "customers@2024-05", "derived_from", "customer_features@3") in _chain(version)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert 'id="feature-sets"' in page and "customer_features@3" in page and "customers@2024-05" in page


def test_version_form_shows_every_feature_set_error_at_once(client, owner, registered_model):
    client.force_login(owner)
    response = client.post("/models/churn/versions/new/", {
        "semver": "1.0", "feature_sets": "nameonly <- a@1\nfs@2 <- a@1,,b@2\nok@1 <- x@1\nok@1\n"})
    body = response.content.decode()
    assert response.status_code == 400
    for message in ("Line 1 (nameonly", "Line 2: list the datasets", "ok@1 is declared twice",
                    "is not a semantic version"):
        assert message in body, message
    assert not ModelVersion.objects.exists() and not LineageNode.objects.exists()


def test_version_form_refuses_a_cycle_readably(client, owner, registered_model):
    client.force_login(owner)
    response = client.post("/models/churn/versions/new/", {"feature_sets": "loop@1 <- loop@1"})
    assert response.status_code == 409 and "cannot derive from loop@1" in response.content.decode()
    assert not ModelVersion.objects.exists() and not LineageNode.objects.exists()


# --------------------------------------------------------------------------------------- mlflow client


@pytest.mark.django_db(transaction=True)
def test_stock_mlflow_client_logs_feature_sets(mlflow_env, owner, api_client_for):  # noqa: F811
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    estimator = LogisticRegression().fit(X, [1, 0, 1, 0])
    mlflow_env(owner)
    mlflow.set_experiment("churn-features")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_numpy(X, name="train-set", source="s3://lake/train"), context="training")
        mlflow.log_input(mlflow.data.from_numpy(X, name="customer_features", source="s3://features/customer/v3"),
                         context="features", tags={
                             "stratum.version": "3", "stratum.derived_from": "customers@2024-05, orders@2024-05",
                             "stratum.transformation_ref": CUSTOMER_FEATURES["transformation_ref"]})
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name="churn")
    version = ModelVersion.objects.get(model__name="churn", number=1)
    # The features input is a feature set, not a training dataset.
    assert [d.name for d in version.datasets.all()] == ["train-set"]
    assert _chain(version) >= {
        ("dataset", "customers@2024-05", "derived_from", "customer_features@3"),
        ("dataset", "orders@2024-05", "derived_from", "customer_features@3"),
        ("feature_set", "customer_features@3", "uses_features", "churn@1"),
    }
    fs = LineageNode.objects.get(kind=NodeKind.FEATURE_SET)
    assert fs.uri == "s3://features/customer/v3" and fs.transformation_ref == CUSTOMER_FEATURES["transformation_ref"]
    assert fs.schema  # MLflow's tensor spec of the dataset
    [listed] = api_client_for(owner).get("/api/v1/models/churn/versions/1").json()["feature_sets"]
    assert listed["name"] == "customer_features" and len(listed["derived_from"]) == 2

    # Registering the run again: the same feature set node, a second uses_features edge.
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
    assert LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).count() == 1
    assert LineageEdge.objects.filter(upstream=fs, kind=EdgeKind.USES_FEATURES).count() == 2

    # A features input whose sources are malformed: registration answers INVALID_PARAMETER_VALUE, writes nothing.
    with mlflow.start_run() as bad:
        mlflow.log_input(mlflow.data.from_numpy(X, name="broken_features"), context="features",
                         tags={"stratum.derived_from": "customers@"})
        info = mlflow.sklearn.log_model(estimator, name="model")
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().create_model_version("churn", f"models:/{info.model_id}", run_id=bad.info.run_id)
    assert error.value.error_code == "INVALID_PARAMETER_VALUE" and "broken_features" in error.value.message
    assert ModelVersion.objects.filter(model__name="churn").count() == 2
    assert not LineageNode.objects.filter(name="broken_features").exists()
