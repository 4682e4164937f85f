"""Erasure pages: list with countdown and overdue rows, detail with impact and obligations, certificate PDF."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from governance.erasure import services
from governance.models import ErasureRequest, ObligationStatus
from tests.governance.conftest import SUBJECT

OTHER_SUBJECT = "sam@example.org"

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_recording_a_request_from_the_page_never_echoes_the_identifier(world):
    client = login(world["officer"])
    assert ">Erasure<" in client.get("/").content.decode()
    response = client.post("/erasure/", {"identifier": SUBJECT, "received_on": timezone.localdate().isoformat()})
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    assert SUBJECT not in body
    assert "churn v3" in body and "churn-prod" in body and "customers 2026-01" in body
    assert "data-lineage-chart" in body and "vendor/plotly.min.js" in body


def test_list_shows_countdown_and_highlights_overdue(world):
    officer = world["officer"]
    services.erasure_request_create(actor=officer, identifier=SUBJECT, received_on=date.today() - timedelta(days=40))
    services.erasure_request_create(actor=officer, identifier="someone@example.org")
    body = login(officer).get("/erasure/").content.decode()
    assert 'class="overdue"' in body and "overdue by" in body and "days left" in body


def test_outsiders_cannot_see_erasure_pages(world, outsider):
    client = login(outsider)
    assert client.get("/erasure/").status_code == 403
    assert ">Erasure<" not in client.get("/").content.decode()


def test_close_is_refused_on_the_page_then_certificate_after_resolution(world):
    officer = world["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    client = login(officer)
    client.post(f"/erasure/{request.pk}/", {"action": "close"})
    request.refresh_from_db()
    assert request.state == "open"
    assert "unresolved" in client.get(f"/erasure/{request.pk}/").content.decode()
    for obligation in request.obligations.all():
        client.post(f"/erasure/{request.pk}/", {"action": "resolve", "obligation": obligation.pk,
                                                 "status": ObligationStatus.NOT_APPLICABLE, "reason": "Test."})
    client.post(f"/erasure/{request.pk}/", {"action": "close"})
    assert ErasureRequest.objects.get(pk=request.pk).state == "closed"
    response = client.get(f"/erasure/{request.pk}/certificate.pdf")
    assert response.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert f"erasure request #{request.pk}" in text and "churn v3" in text and SUBJECT not in text
    assert request.subject_hash not in text


def test_api_manifest_upload_as_file_and_request_flow(world, api_client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    officer = api_client_for(world["officer"])
    node = world["d3"].pk
    upload = SimpleUploadedFile("subjects.txt", f"{SUBJECT}\nother@example.org\n\n".encode())
    response = officer.put(f"/api/v1/lineage/nodes/{node}/subject-manifest", {"file": upload}, format="multipart")
    assert response.status_code == 200 and response.json()["entries"] == 2
    response = officer.put(f"/api/v1/lineage/nodes/{node}/subject-manifest", {"identifiers": ["x@example.org"]},
                           format="json")
    assert response.json()["entries"] == 1
    created = officer.post("/api/v1/erasure-requests", {"identifier": SUBJECT}, format="json")
    assert created.status_code == 201
    body = created.json()
    # six items and the feature set derived from the events dataset
    assert len(body["obligations"]) == 7 and SUBJECT not in created.content.decode()
    pk = body["id"]
    assert officer.post(f"/api/v1/erasure-requests/{pk}/close", format="json").status_code == 409
    for ob in body["obligations"]:
        r = officer.post(f"/api/v1/erasure-requests/{pk}/obligations/{ob['id']}/resolve",
                         {"status": "not_applicable", "reason": "Test."}, format="json")
        assert r.status_code == 200
    assert officer.post(f"/api/v1/erasure-requests/{pk}/close", format="json").json()["state"] == "closed"
    assert api_client_for(world["owner"]).get("/api/v1/erasure-requests").status_code == 403


def test_manifest_page_uploads_a_file_and_warns_about_reingested_subjects(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from governance.models import SubjectManifest

    officer = world["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    for obligation in request.obligations.all():
        services.obligation_resolve(obligation=obligation, actor=officer, status=ObligationStatus.NOT_APPLICABLE,
                                    reason="Test.")
    services.erasure_request_close(request=request, actor=officer)
    client = login(officer)
    node = world["d3"].pk
    upload = SimpleUploadedFile("s.txt", f"{SUBJECT}\nnew@example.org\n".encode())
    assert client.post(f"/lineage/nodes/{node}/subject-manifest/", {"file": upload}).status_code == 302
    assert SubjectManifest.objects.get(node_id=node).entries == 2
    body = client.get(f"/lineage/nodes/{node}/subject-manifest/").content.decode()
    assert "Re-ingested subjects" in body and SUBJECT not in body
    assert SUBJECT not in client.get(f"/erasure/{request.pk}/").content.decode()
    assert "Re-ingested subject" in client.get(f"/erasure/{request.pk}/").content.decode()


def test_detail_names_the_subject_by_its_own_fingerprint_and_links_every_item(world):
    from governance.erasure.hashing import subject_hash

    officer = world["officer"]
    first = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    second = services.erasure_request_create(actor=officer, identifier=OTHER_SUBJECT)
    client = login(officer)
    pages = {r.pk: client.get(f"/erasure/{r.pk}/").content.decode() for r in (first, second)}
    assert subject_hash(SUBJECT)[:16] in pages[first.pk] and subject_hash(OTHER_SUBJECT)[:16] in pages[second.pk]
    assert subject_hash(SUBJECT)[:16] not in pages[second.pk]
    assert "subject key" not in pages[first.pk]
    body = pages[first.pk]
    v3 = world["versions"][2]
    assert f'href="/models/churn/versions/{v3.number}/"' in body
    assert f'href="/models/churn/versions/{v3.number}/card/"' in body
    assert f'href="/lineage/nodes/{world["d1"].pk}/subject-manifest/"' in body
    # The fixture's deployment was recorded by hand in the lineage graph, not rolled out by Stratum.
    assert "External deployment, known only from the lineage graph" in body


def test_a_stratum_rollout_in_the_impact_links_to_its_endpoint(world):
    from registry.lineage import services as lineage

    owner, model = world["owner"], world["model"]
    version_node = lineage.version_node_ensure(world["versions"][0])[0]
    rollout = lineage.node_create(actor=owner, kind="deployment", model=model, name="churn-staging#7", version="1").obj
    lineage.edge_create(actor=owner, upstream=version_node, downstream=rollout, kind="deployed_as")
    request = services.erasure_request_create(actor=world["officer"], identifier=SUBJECT)
    body = login(world["officer"]).get(f"/erasure/{request.pk}/").content.decode()
    assert 'href="/deployments/churn-staging/"' in body and "Endpoint churn-staging on the Deployments page" in body
    assert "Deployment #7 of churn-staging (version 1)" in body
