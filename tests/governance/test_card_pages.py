"""Model card pages and API: what people see and do, exports by format, sanitised Markdown, states."""

from __future__ import annotations

import io

import pytest
import yaml
from django.test import Client
from pypdf import PdfReader

from governance.cards import services
from governance.models import CardState, ModelCard
from tests.governance.test_cards import fill

pytestmark = pytest.mark.django_db
CARD = "/models/churn/versions/2/card/"
API = "/api/v1/models/churn/versions/2/card"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_contributor_creates_a_prefilled_card_from_the_page(protected, team):
    client = login(team["engineer"])
    body = client.get(CARD).content.decode()
    assert "has no model card yet" in body and "Create the card" in body
    response = client.post(CARD, {"action": "create"})
    assert response.status_code == 302
    body = client.get(CARD).content.decode()
    assert "Draft" in body and "events-2026" in body and "Missing:" in body and "Out-of-scope uses" in body
    assert "Export PDF" in body


def test_viewers_see_but_cannot_create_or_edit(protected, team):
    services.card_create(version=protected["v2"], actor=team["engineer"])
    client = login(team["viewer"])
    body = client.get(CARD).content.decode()
    assert "Export PDF" in body and "Send for review" not in body and ">Edit<" not in body
    response = client.post(f"{CARD}edit/factors/", {"relevant_factors": "x"})
    assert response.status_code == 403


def test_the_section_form_saves_parses_and_moves_on(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    client = login(team["engineer"])
    assert "Performance measures" in client.get(f"{CARD}edit/metrics/").content.decode()
    response = client.post(f"{CARD}edit/quantitative_analyses/", {
        "unitary_results": "Overall **AUC** 0.85 <script>alert(1)</script>",
        "slices": "EU | auc | 0.84 | 0.81 | 0.87\nUS | auc | 0.86 | |", "next": "ethical_considerations"})
    assert response.status_code == 302 and response["Location"].endswith("edit/ethical_considerations/")
    card.refresh_from_db()
    qa = card.content["quantitative_analyses"]
    assert qa["slices"][0] == {"slice": "EU", "metric": "auc", "value": 0.84, "ci_lower": 0.81, "ci_upper": 0.87}
    assert qa["slices"][1]["ci_lower"] is None
    body = client.get(CARD).content.decode()
    assert "<strong>AUC</strong>" in body and "<script>alert(1)</script>" not in body
    bad = client.post(f"{CARD}edit/quantitative_analyses/", {"slices": "EU | auc | high"})
    assert bad.status_code == 400 and "is not a number" in bad.content.decode()


def test_review_flow_on_the_page(protected, team):
    card = fill(services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    login(team["engineer"]).post(CARD, {"action": "submit"})
    assert "Send for review" not in login(team["engineer"]).get(CARD).content.decode()
    login(team["r1"]).post(CARD, {"action": "approve", "comment": "Fine."})
    card.refresh_from_db()
    assert card.state == CardState.APPROVED
    body = login(team["viewer"]).get(CARD).content.decode()
    assert "Approved by <strong>r1</strong>" in body and "100%" in body


@pytest.mark.parametrize("fmt,kind", [("pdf", "application/pdf"), ("md", "text/markdown"),
                                      ("mct", "application/json"), ("json", "application/json")])
def test_page_exports(protected, team, fmt, kind):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    response = login(team["viewer"]).get(f"{CARD}export/{fmt}/")
    assert response.status_code == 200 and response["Content-Type"].startswith(kind)
    assert response["X-Card-SHA256"] == card.sha256


def test_api_get_formats(protected, team, api_client_for):
    card = fill(services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])
    client = api_client_for(team["viewer"])
    body = client.get(API).json()
    assert body["sha256"] == card.sha256 and body["completeness"] == 100
    assert client.get(f"{API}?format=json").json()["content"]["model_details"]["name"] == "churn"
    assert client.get(f"{API}?format=mct").json()["schema_version"] == "0.0.2"
    md = client.get(f"{API}?format=md").content.decode()
    assert yaml.safe_load(md.split("---\n")[1])["license"] == "apache-2.0"
    pdf = client.get(f"{API}?format=pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "Model card: churn" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    bad = client.get(f"{API}?format=docx")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"
    assert client.get("/api/v1/models/churn/versions/1/card").status_code == 404


def test_api_put_creates_edits_and_refuses(protected, team, api_client_for):
    engineer = api_client_for(team["engineer"])
    response = engineer.put(API, {"section": "factors", "values": {"relevant_factors": "Region."}}, format="json")
    assert response.status_code == 201
    assert response.json()["content"]["factors"]["relevant_factors"] == "Region."
    response = engineer.put(API, {"section": "factors", "values": {"nope": 1}}, format="json")
    assert response.status_code == 400
    content = ModelCard.objects.get().content
    content["intended_use"]["primary_uses"] = "Retention."
    response = engineer.put(API, {"content": content, "note": "Bulk edit."}, format="json")
    assert response.status_code == 200 and response.json()["content"]["intended_use"]["primary_uses"] == "Retention."
    content["unexpected"] = True
    assert engineer.put(API, {"content": content}, format="json").status_code == 400
    viewer = api_client_for(team["viewer"])
    assert viewer.put(API, {"section": "factors", "values": {"relevant_factors": "x"}}, format="json"
                      ).status_code == 403
    refused = engineer.post(f"{API}/submit", {}, format="json")
    assert refused.status_code == 409
    assert "needs 100% before a card goes for review" in refused.json()["error"]["message"]
    fill(ModelCard.objects.get(), team["engineer"])
    assert engineer.post(f"{API}/submit", {}, format="json").json()["state"] == "in_review"
    assert engineer.post(f"{API}/approve", {}, format="json").status_code == 403
    history = viewer.get(f"{API}/history").json()["results"]
    assert [r["action"] for r in history][:2] == ["submitted", "updated"]


def test_all_cards_of_a_model_in_one_pdf(protected, team):
    services.card_create(version=protected["v1"], actor=team["engineer"])
    services.card_create(version=protected["v2"], actor=team["engineer"])
    response = login(team["viewer"]).get("/models/churn/cards.pdf")
    assert response.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Version 1" in text and "Version 2" in text


def test_version_page_links_to_the_card(protected, team):
    body = login(team["viewer"]).get("/models/churn/versions/2/").content.decode()
    assert "/models/churn/versions/2/card/" in body


def test_exporting_every_card_runs_as_a_job_with_progress(protected, team, django_capture_on_commit_callbacks):
    from governance.models import CardExportJob

    services.card_create(version=protected["v1"], actor=team["engineer"])
    services.card_create(version=protected["v2"], actor=team["engineer"])
    client = login(team["viewer"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/models/churn/cards/export/")
    assert response.status_code == 302 and len(callbacks) == 1
    job = CardExportJob.objects.get()
    assert (job.state, job.done, job.total, job.progress) == ("done", 2, 2, 100)  # eager in tests
    from registry.models import Job

    pdf_job = Job.objects.get(kind="pdf")  # the durable pipeline row the sweeper watches
    assert (pdf_job.state, pdf_job.progress, pdf_job.attempts) == ("succeeded", 100, 1)
    assert pdf_job.result["cards"] == 2 and pdf_job.params == {"card_export": job.pk}
    assert str(pdf_job).startswith("Render PDF #")  # governance registered the kind with its label at start-up
    body = client.get(response["Location"]).content.decode()
    assert "2 of 2 cards rendered" in body and "Download PDF" in body
    pdf = client.get(f"{response['Location']}?download=1")
    data = b"".join(pdf.streaming_content)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Version 1" in text and "Version 2" in text
    assert login(team["r1"]).get(response["Location"]).status_code == 200
    from django.contrib.auth import get_user_model

    stranger = get_user_model().objects.create_user("stranger")
    assert login(stranger).get(response["Location"]).status_code == 404


# ------------------------------------------------------------------------------ the version page's Card tab

CARD_TAB = "/models/churn/versions/2/model-card/"


def test_the_card_tab_summarises_the_card_and_links_to_it(protected, team):
    client = login(team["engineer"])
    body = client.get(CARD_TAB).content.decode()
    assert 'id="tab-model-card"' in body and "has no model card yet" in body and "Create the card" in body
    assert "Create the card" not in login(team["viewer"]).get(CARD_TAB).content.decode()
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    body = client.get(CARD_TAB, headers={"HX-Request": "true", "HX-Target": "version-tabs"}).content.decode()
    assert "<html" not in body and "Draft" in body and f"{card.completeness}%" in body and "Missing:" in body
    assert f'href="{CARD}"' in body and f'href="{CARD}export/pdf/"' in body and "Out-of-scope uses" in body
