"""The seeded demo: a staging endpoint per demo model serves its champion, callable with the printed token."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from deployments.models import Endpoint, Environment
from registry.models import AccessToken

pytestmark = pytest.mark.django_db


def test_seed_demo_serves_each_champion_and_prints_a_serving_token(client, monkeypatch):
    from stratum.demo import registry as demo

    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "not deployed" not in text and "not prepared" not in text, text
    endpoint = Endpoint.objects.get(name="iris-species-staging")
    champion = endpoint.model.aliases.get(name="champion").version
    assert endpoint.routing["routes"][0]["number"] == champion.number
    assert set(Environment.objects.values_list("name", flat=True)) == {"staging", "production"}
    token = re.search(r"serve scope; shown once\):\s+(stm_\S+)", text).group(1)
    response = client.post("/serve/iris-species-staging/predict", data=json.dumps({"rows": [[5.1, 3.5, 1.4, 0.2]]}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    # With one demo model, that model also gets the demo's canary: its challenger takes 20 % of requests.
    weights = {r["number"]: r["weight"] for r in endpoint.routing["routes"]}
    assert weights[champion.number] >= 80
    assert response.status_code == 200 and response.json()["version"] in weights
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert Endpoint.objects.count() == 1 and "already has the serving token" in again.getvalue()


def test_seed_demo_seeds_the_chain_from_data_to_predictions(client, monkeypatch):
    """datasets -> feature set -> versions -> conversions -> deployments -> prediction batches, from real requests."""
    from deployments.models import PredictionRecord
    from registry.lineage import selectors as lineage
    from registry.lineage.models import LineageNode, NodeKind
    from stratum.demo import registry as demo

    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "iris-species: uses features iris-features v1" in out.getvalue()
    assert re.search(r"iris-species-staging: 24 demo requests \(v\d+: \d+", out.getvalue())
    train = LineageNode.objects.get(kind=NodeKind.DATASET, name="iris-train")
    admin = get_user_model().objects.get(username="admin")
    graph = lineage.lineage_walk(actor=admin, node=train, direction="downstream", depth=5)
    kinds_at = {}
    for n in graph.nodes:
        kinds_at.setdefault(n.kind, set()).add(graph.depths[n.pk])
    features = LineageNode.objects.get(kind=NodeKind.FEATURE_SET, name="iris-features")
    assert kinds_at[NodeKind.FEATURE_SET] == {1}
    assert set(features.schema["features"][0]) == {"name", "type"} and features.transformation_ref
    used_by = set(features.downstream_edges.filter(kind="uses_features").values_list(
        "downstream__model_version", flat=True))
    assert used_by == set(Endpoint.objects.get(name="iris-species-staging").model.versions.values_list("pk", flat=True))
    assert kinds_at[NodeKind.MODEL_VERSION] == {1}  # trained on the data (and through the feature set)
    for kind in (NodeKind.CONVERTED_ARTIFACT, NodeKind.DEPLOYMENT, NodeKind.PREDICTION_BATCH):
        assert kind in kinds_at, f"no {kind} downstream of the training data"
    batches = LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH, endpoint="iris-species-staging")
    assert sum(b.properties["requests"] for b in batches) == 24
    assert PredictionRecord.objects.filter(batch__node__in=batches).count() == 24
    # Each batch was produced by a deployment and a version that uses the feature set.
    for batch in batches:
        ups = {e.upstream.kind for e in batch.upstream_edges.select_related("upstream")}
        assert ups == {NodeKind.DEPLOYMENT, NodeKind.MODEL_VERSION}
    assert not AccessToken.objects.filter(name="demo-traffic", revoked_at__isnull=True).exists()
    # Run again: nothing new (no second feature set, no second round of requests).
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "demo requests" not in again.getvalue()
    assert LineageNode.objects.filter(kind=NodeKind.FEATURE_SET).count() == 1
    assert sum(b.properties["requests"] for b in batches.all()) == 24
