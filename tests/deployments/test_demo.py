"""The seeded demo: a staging endpoint per demo model serves its champion, callable with the printed token."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from deployments.models import Endpoint, Environment

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
