"""EU AI Act technical documentation (Annex IV): nine sections from registry data, gaps named as gaps, the document's
hash in the audit trail, JSON and PDF, bad input and permissions."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance import audit
from governance.models import AuditEvent
from governance.techdoc import services
from registry import services as registry_services
from registry.models import RegisteredModel, Role
from stratum.demo import registry as demo

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/{name}/versions/{ref}/technical-documentation"
# The nine points of Annex IV of Regulation (EU) 2024/1689, as the Annex words them.
ANNEX_IV = [
    "A general description of the AI system",
    "A detailed description of the elements of the AI system and of the process for its development",
    "Detailed information about the monitoring, functioning and control of the AI system",
    "A description of the appropriateness of the performance metrics for the specific AI system",
    "A detailed description of the risk management system in accordance with Article 9",
    "A description of relevant changes made by the provider to the system through its lifecycle",
    "A list of the harmonised standards applied",
    "A copy of the EU declaration of conformity referred to in Article 47",
    "A detailed description of the system in place to evaluate the AI system performance in the post-market phase",
]


@pytest.fixture
def seeded(monkeypatch, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))
    call_command("seed_demo", stdout=io.StringIO())
    model = RegisteredModel.objects.get(name="iris-species")
    return {"model": model, "champion": model.aliases.get(name="champion").version,
            "engineer": get_user_model().objects.get(username="engineer")}


def _pdf_text(data: bytes) -> str:
    """The PDF's text as pdftotext (poppler-utils) reads it, whitespace collapsed."""
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout
    return re.sub(r"\s+", " ", out.decode())


def _section(doc: dict, number: int) -> dict:
    return next(s for s in doc["sections"] if s["number"] == number)


def test_the_demo_champion_has_nine_sections_its_gaps_and_an_audited_hash(seeded, api_client_for):
    champion = seeded["champion"]
    response = api_client_for(seeded["engineer"]).get(URL.format(name="iris-species", ref="champion"))
    assert response.status_code == 200, response.content
    doc = response.json()

    assert (doc["model"], doc["version"]) == ("iris-species", champion.number)
    assert [s["number"] for s in doc["sections"]] == list(range(1, 10))
    for section, title in zip(doc["sections"], ANNEX_IV, strict=True):
        assert section["title"].startswith(title)

    # Registry facts, not prose: the card's intended use, the deployment, the datasets, the approvals, history.
    general = _section(doc, 1)["content"]
    assert general["intended_purpose"]["intended_use.primary_uses"]
    assert any(d["endpoint"] == "iris-species-staging" for d in general["deployments"])
    assert [v["number"] for v in general["versions"] if v["this_version"]] == [champion.number]
    development = _section(doc, 2)["content"]
    assert {d["role"] for d in development["datasets"]} == {"train", "test"}
    assert development["metrics"] == champion.metrics
    assert development["bom"]["spec"].startswith("CycloneDX 1.")
    oversight = _section(doc, 3)["content"]["approval_record"]
    executed = [r for r in oversight if r["state"] == "executed"]
    assert {r["target"] for r in executed} == {"@champion", "Production"}
    assert all(sorted(d["reviewer"] for d in r["decisions"]) == ["reviewer", "reviewer2"] for r in executed)
    assert all(d["stale"] is False for r in executed for d in r["decisions"])
    risk = _section(doc, 5)["content"]
    assert {c["target"] for c in risk["controls"]} == {"@champion", "Production"}
    history = _section(doc, 6)["content"]["events"]
    assert [e["data"]["to_version"] for e in history if e["action"] == "model_version_alias.set"
            and e["data"]["alias"] == "champion"][-1] == champion.number
    assert any(e["action"].startswith("model_card.") for e in history)
    declaration = _section(doc, 8)["content"]["items"]
    assert len(declaration) == 8 and sum(i["placeholder"] for i in declaration) == 7
    assert _section(doc, 9)["content"]["monitoring"], "the staging endpoint serves the champion"

    # Gaps: listed per section and together, each naming its section; what Annex IV asks and the registry does not
    # hold is a gap (no validation dataset in the demo, no hardware description, an unsigned declaration).
    assert doc["gaps"] and all(1 <= g["section"] <= 9 and g["missing"] for g in doc["gaps"])
    assert len(doc["gaps"]) == sum(len(s["gaps"]) for s in doc["sections"])
    missing = {(g["section"], g["missing"]) for g in doc["gaps"]}
    assert (2, "A validation dataset") in missing
    assert any(n == 1 and "hardware" in text for n, text in missing)
    assert any(n == 8 and "declaration of conformity" in text for n, text in missing)

    # The hash covers the document and sits in the audit trail, in a chain that still verifies.
    assert doc["sha256"] == services.techdoc_hash(doc) == response["X-Document-SHA256"]
    event = AuditEvent.objects.get(action=services.GENERATED_ACTION, data__sha256=doc["sha256"])
    assert (event.model_name, event.version_number, event.actor_username) == (
        "iris-species", champion.number, "engineer")
    assert doc["audit_event"] == {"seq": event.seq, "hash": event.hash}
    assert audit.verify().ok

    # Generating it again records a second event for the same hash: the generation does not change the document.
    again = api_client_for(seeded["engineer"]).get(URL.format(name="iris-species", ref=str(champion.number))).json()
    assert again["sha256"] == doc["sha256"]
    assert AuditEvent.objects.filter(action=services.GENERATED_ACTION, data__sha256=doc["sha256"]).count() == 2


def test_the_pdf_shows_every_section_its_gaps_and_the_hash(seeded, api_client_for):
    response = api_client_for(seeded["engineer"]).get(URL.format(name="iris-species", ref="champion"),
                                                      {"format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    digest = response["X-Document-SHA256"]
    text = _pdf_text(response.content)
    for number, title in enumerate(ANNEX_IV, 1):
        assert f"{number}. {title}" in text
    assert digest in text
    assert "Gaps in section 2" in text and "A validation dataset" in text
    assert "PLACEHOLDER" in text and "not signed" in text
    event = AuditEvent.objects.get(action=services.GENERATED_ACTION, data__sha256=digest)
    assert event.data["format"] == "pdf"


def test_a_version_with_almost_nothing_yields_gaps_not_text(registered_model, make_version, owner, api_client_for):
    bare = make_version(registered_model, owner)
    response = api_client_for(owner).get(URL.format(name="churn", ref="latest"))
    assert response.status_code == 200
    doc = response.json()
    missing = {(g["section"], g["missing"]) for g in doc["gaps"]}
    for expected in [(2, "The training dataset"), (2, "The code commit the version was built from"),
                     (2, "The training parameters (hyperparameters)"), (2, "Validation and test metrics"),
                     (2, "A signature over the version's files"),
                     (3, "Gateway metrics: the serving gateway has recorded no traffic for this version"),
                     (5, "Promotion controls: no stage or alias of this model is protected by review")]:
        assert expected in missing
    assert (1, "Intended use › Primary intended uses (no model card)") in missing
    assert {g["section"] for g in doc["gaps"]} == set(range(1, 10)) - {6}
    # Nothing is filled in: the card fields are empty, the facts absent.
    general = _section(doc, 1)["content"]
    assert set(general["intended_purpose"].values()) == {""}
    assert general["deployments"] == [] and general["lineage_deployments"] == []
    development = _section(doc, 2)["content"]
    assert development["datasets"] == [] and development["metrics"] == {} and development["provenance"] == []
    assert development["code"] == {"repository": None, "commit": None, "run_id": None, "source_uri": None}
    assert _section(doc, 3)["content"]["approval_record"] == []
    assert _section(doc, 9)["content"]["monitoring"] == []
    assert AuditEvent.objects.filter(action=services.GENERATED_ACTION, version_number=bare.number).count() == 1

    text = _pdf_text(api_client_for(owner).get(URL.format(name="churn", ref="1"), {"format": "pdf"}).content)
    assert "Gap: no datasets recorded." in text and "Gaps in section 9" in text


def test_unknown_model_or_version_is_404_and_a_bad_format_400(registered_model, make_version, owner,
                                                             api_client_for):
    make_version(registered_model, owner)
    client = api_client_for(owner)
    for name, ref in (("nope", "1"), ("churn", "7"), ("churn", "no-such-alias")):
        response = client.get(URL.format(name=name, ref=ref))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    response = client.get(URL.format(name="churn", ref="1"), {"format": "docx"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETER_VALUE" and "json, pdf" in error["message"]
    assert not AuditEvent.objects.filter(action=services.GENERATED_ACTION).exists()


def test_only_people_who_may_view_the_model_get_it(registered_model, make_version, owner, outsider, make_user,
                                                   grant, api_client_for, client):
    make_version(registered_model, owner)
    refused = api_client_for(outsider).get(URL.format(name="churn", ref="1"))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    client.force_login(outsider)
    assert client.get("/models/churn/versions/1/technical-documentation.pdf").status_code == 404
    assert not AuditEvent.objects.filter(action=services.GENERATED_ACTION).exists()

    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    assert api_client_for(viewer).get(URL.format(name="churn", ref="1")).status_code == 200
    client.force_login(viewer)
    page = client.get("/models/churn/versions/1/technical-documentation.pdf")
    assert page.status_code == 200 and page["Content-Type"] == "application/pdf"


def test_the_card_page_links_to_the_document(seeded, client):
    client.force_login(seeded["engineer"])
    champion = seeded["champion"]
    page = client.get(f"/models/iris-species/versions/{champion.number}/card/")
    href = f"/models/iris-species/versions/{champion.number}/technical-documentation.pdf"
    assert href in page.content.decode()
    download = client.get(href)
    assert download.status_code == 200
    assert AuditEvent.objects.filter(action=services.GENERATED_ACTION,
                                     data__sha256=download["X-Document-SHA256"]).exists()


def test_queries_do_not_grow_with_the_history(registered_model, make_version, owner,
                                              django_assert_max_num_queries):
    v1, v2 = make_version(registered_model, owner), make_version(registered_model, owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            services.techdoc_build(version=v1, actor=owner)
        return len(ctx.captured_queries)

    before = count()
    for _ in range(15):  # thirty alias moves and fifteen stage changes later
        registry_services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
        registry_services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
        registry_services.version_transition_stage(version=v1, actor=owner, stage="Staging")
    assert count() == before
    # The generation adds at most its savepoint, the chain lock (PostgreSQL), the chain head and the audit insert.
    with django_assert_max_num_queries(before + 4):
        services.techdoc_generate(version=v1, actor=owner)


def test_gateway_metrics_analyses_and_drift_checks_come_from_the_serving_app(registered_model, make_version, owner):
    from django.utils import timezone

    from deployments.models import AnalysisRun, Deployment, Endpoint, Environment, TrafficStat

    v1, v2 = make_version(registered_model, owner), make_version(registered_model, owner)
    env = Environment.objects.create(name="production")
    endpoint = Endpoint.objects.create(name="churn-prod", environment=env, model=registered_model, routing={
        "routes": [{"version_id": v1.pk, "number": 1, "weight": 90, "role": "stable"},
                   {"version_id": v2.pk, "number": 2, "weight": 10, "role": "canary"}]})
    rollout = Deployment.objects.create(endpoint=endpoint, strategy="canary", phase="progressing", stable_version=v1,
                                        candidate_version=v2, weight=10, analysis={"max_error_rate": 0.01},
                                        steps=[{"set_weight": 10}, {"analysis": {}}], started_at=timezone.now())
    now = timezone.now().replace(microsecond=0)
    TrafficStat.objects.create(endpoint=endpoint, deployment=rollout, version=v2, bucket=now, requests=40, errors=2,
                               latency_total_ms=400.0)
    TrafficStat.objects.create(endpoint=endpoint, deployment=rollout, version=v2, bucket=now, requests=10, errors=0,
                               latency_total_ms=100.0)
    AnalysisRun.objects.create(deployment=rollout, step_index=1, verdict="failed", detail="error rate 4% > 1%",
                               metrics={"label_shift": {"psi": 0.31}})

    doc = services.techdoc_build(version=v2, actor=owner)
    general, control, plan = _section(doc, 1)["content"], _section(doc, 3)["content"], _section(doc, 9)["content"]
    assert [(d["endpoint"], d["role"], d["phase"]) for d in general["deployments"]] == [
        ("churn-prod", "candidate", "progressing")]
    assert general["serving_now"] == [{"endpoint": "churn-prod", "environment": "production",
                                       "routes": ["canary 10%"]}]
    [gateway] = control["gateway_metrics"]
    assert (gateway["requests"], gateway["errors"], gateway["error_rate"], gateway["mean_latency_ms"]) == (
        50, 2, 0.04, 10.0)
    assert [(a["verdict"], a["label_psi"]) for a in control["rollout_analyses"]] == [("failed", 0.31)]
    assert control["drift_checks"] == control["rollout_analyses"]
    [monitoring] = plan["monitoring"]
    assert monitoring["thresholds"]["max_error_rate"] == 0.01  # the rollout's own setting over the defaults
    assert monitoring["steps"] == [{"set_weight": 10}, {"analysis": {}}]
    section_gaps = {g["missing"] for g in doc["gaps"] if g["section"] in (3, 9)}
    assert not any(g.startswith(("Gateway metrics", "Rollout analyses", "Drift checks", "Post-market monitoring"))
                   for g in section_gaps)

    # The version that only ever served as the stable side has no analysis of its own and says so.
    stable = services.techdoc_build(version=v1, actor=owner)
    assert _section(stable, 1)["content"]["deployments"][0]["role"] == "stable"
    assert _section(stable, 3)["content"]["gateway_metrics"] == []


def test_the_risk_record_names_approvals_that_went_stale(protected, team, django_capture_on_commit_callbacks):
    from governance import services as promotions

    request = promotions.promotion_request_create(version=protected["v2"], actor=team["engineer"], kind="alias",
                                                  target="champion", justification="Better AUC on the 2026 data.")
    promotions.promotion_approve(request=request, actor=team["r1"])
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.version_update(version=protected["v2"], actor=team["engineer"],
                                         metrics={"auc": 0.86, "loss": 0.4})
    risk = _section(services.techdoc_build(version=protected["v2"], actor=team["engineer"]), 5)["content"]
    [stale] = risk["stale_approvals"]
    assert stale["request"] == request.pk and stale["reviewer"] == "r1" and stale["stale"] is True
    assert any("auc" in reason for reason in stale["stale_reasons"])
