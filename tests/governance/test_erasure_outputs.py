"""Erasure reaches outputs: the feature sets and prediction batches derived from the subject's data are affected items,
each with what the officer must do and the evidence its resolution needs, on the page, in the API and certificate."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.test import Client
from pypdf import PdfReader

from governance.erasure import services
from governance.models import ErasureState, ObligationStatus
from registry.errors import InvalidInput, InvalidState
from registry.lineage import offline
from registry.lineage import services as lineage
from registry.lineage.features import feature_sets_declare, feature_sets_parse
from tests.governance.conftest import OTHERS, SUBJECT

pytestmark = pytest.mark.django_db


@pytest.fixture
def outputs(world):
    """World plus outputs: churn v3 (trained on both datasets) scored a file offline and was served (a gateway
    batch); churn v4 (trained on weather only) scored a file too, which the subject never reached."""
    owner, versions = world["owner"], world["versions"]
    scored = offline.prediction_batch_register(actor=owner, version=versions[2], uri="s3://scores/churn/v3.parquet",
                                               row_count=5000).obj
    clean = offline.prediction_batch_register(actor=owner, version=versions[3], uri="s3://scores/churn/v4.parquet",
                                              row_count=10).obj
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    [served] = lineage.prediction_batches_record([lineage.BatchSpec(
        version_id=versions[2].pk, name="churn-prod stable g1", endpoint="churn-prod", window_start=start,
        window_end=start.replace(minute=1), row_count=40, process="web-1", properties={"requests": 40})])
    return {**world, "scored": scored, "clean": clean, "served": served}


def test_impact_includes_feature_sets_and_prediction_batches(outputs):
    request = services.erasure_request_create(actor=outputs["officer"], identifier=SUBJECT)
    items = {(o.kind, o.label) for o in request.obligations.all()}
    assert ("feature_set", "event-features@7") in items
    assert ("prediction_batch", "churn v3: s3://scores/churn/v3.parquet") in items
    assert ("prediction_batch", "churn v3: 2026-11-01 12:00–12:01 UTC") in items
    assert not any("v4.parquet" in label for _, label in items)  # weather only: the subject never reached it
    assert {kind for kind, _ in items} == {"dataset", "feature_set", "model_version", "deployment",
                                           "prediction_batch"}


def test_obligations_need_their_evidence(outputs):
    officer, owner = outputs["officer"], outputs["owner"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    ob = {o.label: o for o in request.obligations.all()}
    features = ob["event-features@7"]
    batch = ob["churn v3: s3://scores/churn/v3.parquet"]
    with pytest.raises(InvalidInput, match="Only prediction batches and feature sets"):
        services.obligation_resolve(obligation=ob["churn v1"], actor=officer, status=ObligationStatus.OUTPUTS_DELETED,
                                    reason="Deleted.")
    with pytest.raises(InvalidInput, match="Say what was done"):
        services.obligation_resolve(obligation=batch, actor=officer, status=ObligationStatus.OUTPUTS_DELETED)
    with pytest.raises(InvalidInput, match="Only feature set obligations"):
        services.obligation_resolve(obligation=batch, actor=officer, status=ObligationStatus.FEATURES_RECOMPUTED,
                                    replacement_node=features.node)
    done = services.obligation_resolve(obligation=batch, actor=officer, status=ObligationStatus.OUTPUTS_DELETED,
                                       reason="Deleted s3://scores/churn/v3.parquet and its replicas.")
    assert done.status == ObligationStatus.OUTPUTS_DELETED
    # A recomputed feature set must be a new version of the same feature set, no longer fed by the subject's data.
    version_four = outputs["versions"][3]
    [still_affected] = feature_sets_parse([{"name": "event-features", "version": "8",
                                            "derived_from": ["events@2026-01"]}])
    feature_sets_declare(actor=owner, version=version_four, feature_sets=[still_affected])
    [recomputed] = feature_sets_parse([{"name": "event-features", "version": "9", "derived_from": ["events@2026-02"]}])
    feature_sets_declare(actor=owner, version=version_four, feature_sets=[recomputed])
    from registry.lineage.models import LineageNode

    v8 = LineageNode.objects.get(kind="feature_set", name="event-features", version="8")
    v9 = LineageNode.objects.get(kind="feature_set", name="event-features", version="9")
    other = LineageNode.objects.get(kind="dataset", name="weather")
    with pytest.raises(InvalidInput, match="same feature set"):
        services.obligation_resolve(obligation=features, actor=officer, status=ObligationStatus.FEATURES_RECOMPUTED,
                                    replacement_node=other)
    with pytest.raises(InvalidState, match="itself affected"):
        services.obligation_resolve(obligation=features, actor=officer, status=ObligationStatus.FEATURES_RECOMPUTED,
                                    replacement_node=v8)
    done = services.obligation_resolve(obligation=features, actor=officer,
                                       status=ObligationStatus.FEATURES_RECOMPUTED, replacement_node=v9)
    assert done.replacement_node == v9


def test_detail_page_api_and_certificate_show_outputs_and_duties(outputs, api_client_for):
    officer = outputs["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    client = Client()
    client.force_login(officer)
    page = client.get(f"/erasure/{request.pk}/").content.decode()
    assert "event-features@7" in page and "churn v3: s3://scores/churn/v3.parquet" in page
    assert "Recompute the feature set without the subject" in page and "Delete the batch&#x27;s outputs" in page
    assert 'value="features_recomputed"' in page and 'value="outputs_deleted"' in page
    assert "The version that produced it" in page and 'href="/models/churn/versions/3/"' in page
    body = api_client_for(officer).get(f"/api/v1/erasure-requests/{request.pk}").json()
    kinds = {o["kind"]: o for o in body["obligations"]}
    assert kinds["prediction_batch"]["duty"].startswith("Delete the batch's outputs")
    assert kinds["feature_set"]["item"] == "event-features@7"
    # Resolve everything through the API (outputs with their own resolution), close, and read the certificate.
    api = api_client_for(officer)
    for o in body["obligations"]:
        status = ObligationStatus.OUTPUTS_DELETED if o["kind"] in ("prediction_batch", "feature_set") \
            else ObligationStatus.NOT_APPLICABLE
        response = api.post(f"/api/v1/erasure-requests/{request.pk}/obligations/{o['id']}/resolve",
                            {"status": status, "reason": "Handled in the test."}, format="json")
        assert response.status_code == 200, response.content
    assert api.post(f"/api/v1/erasure-requests/{request.pk}/close").status_code == 200
    request.refresh_from_db()
    assert request.state == ErasureState.CLOSED
    pdf = client.get(f"/erasure/{request.pk}/certificate.pdf")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "event-features@7" in text and "s3://scores/churn/v3.parquet" in text
    assert "Outputs deleted or marked" in text and SUBJECT not in text and OTHERS[0] not in text


def test_detail_page_queries_do_not_grow_with_outputs(outputs, django_assert_max_num_queries):
    officer, owner = outputs["officer"], outputs["owner"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    client = Client()
    client.force_login(officer)
    client.get(f"/erasure/{request.pk}/")
    with django_assert_max_num_queries(80) as few:
        client.get(f"/erasure/{request.pk}/")
    baseline = len(few.captured_queries)
    for i in range(6):
        offline.prediction_batch_register(actor=owner, version=outputs["versions"][2], uri=f"s3://scores/p{i}",
                                          row_count=i)
    request.obligations.all().delete()
    request.delete()
    again = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    assert again.obligations.filter(kind="prediction_batch").count() == 8
    with django_assert_max_num_queries(baseline):
        client.get(f"/erasure/{again.pk}/")
