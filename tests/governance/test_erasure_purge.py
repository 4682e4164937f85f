"""Erasure can purge the stored files of an affected dataset at once, with the evidence kept on the obligation."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.test import Client
from pypdf import PdfReader

from governance.erasure import services
from governance.models import ErasureObligation, ErasureState, ObligationStatus
from registry.artifacts.storage import artifact_storage, blob_name
from registry.errors import Forbidden, InvalidInput, InvalidState
from registry.lineage import services as lineage
from registry.models import Blob, TrackedArtifact
from registry.tracking import runs
from registry.tracking.artifacts import ArtifactRoot, artifact_put
from registry.tracking.experiments import default_experiment
from tests.conftest import spooled
from tests.governance.conftest import SUBJECT

CUSTOMERS = b"id,email\n1,subject@example.com\n2,other@example.com\n"
COPY = b"id,email\n1,subject@example.com\n"
UNRELATED = b"station,temp\n1,12.5\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def crm(world, make_version):
    """A dataset whose file was logged to a run (and a copy, named by its digest, to another), holding the subject;
    one version also ships the first file, byte for byte."""
    owner, officer = world["owner"], world["officer"]
    etl = runs.run_create(actor=owner, experiment=default_experiment(), run_name="etl")
    for rel, data in (("data/customers.csv", CUSTOMERS), ("data/weather.csv", UNRELATED)):
        artifact_put(actor=owner, root=ArtifactRoot(run=etl, rel=rel), upload=spooled(data))
    other = runs.run_create(actor=owner, experiment=default_experiment(), run_name="export")
    artifact_put(actor=owner, root=ArtifactRoot(run=other, rel="copy.csv"), upload=spooled(COPY))
    node = lineage.node_create(actor=owner, kind="dataset", name="crm", version="1",
                               uri=f"runs:/{etl.pk}/data/customers.csv", digest=f"sha256:{_sha(COPY)}").obj
    services.manifest_upload(node=node, actor=officer, identifiers=[SUBJECT])
    shipped = make_version(world["model"], owner, files={"sample.csv": CUSTOMERS})
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    obligation = request.obligations.get(label="crm 1")
    return {"request": request, "obligation": obligation, "node": node, "etl": etl, "shipped": shipped}


def test_purge_deletes_the_files_and_keeps_the_evidence(world, crm, captured_events):
    storage = artifact_storage()
    done = services.obligation_purge_files(obligation=crm["obligation"], actor=world["officer"])
    evidence = done.files_purged
    assert sorted(f["path"] for f in evidence["files"]) == ["copy.csv", "data/customers.csv"]
    assert evidence["blobs_deleted"] == [_sha(COPY)] and evidence["bytes_freed"] == len(COPY)
    assert not Blob.objects.filter(pk=_sha(COPY)).exists() and not storage.exists(blob_name(_sha(COPY)))
    kept = evidence["blobs_kept"]
    assert [k["sha256"] for k in kept] == [_sha(CUSTOMERS)] and kept[0]["referenced_by"] == ["churn v5: sample.csv"]
    assert storage.exists(blob_name(_sha(CUSTOMERS)))
    assert set(TrackedArtifact.objects.values_list("path", flat=True)) == {"data/weather.csv"}
    assert ErasureObligation.objects.get(pk=crm["obligation"].pk).files_purged_at is not None
    actions = [e.action for e in captured_events]
    assert "lineage_node.files_purged" in actions and "erasure_obligation.files_purged" in actions

    client = Client()
    client.force_login(world["officer"])
    page = client.get(f"/erasure/{crm['request'].pk}/").content.decode()
    assert 'data-testid="files-purged"' in page and f"sha256:{_sha(COPY)}" in page and "churn v5: sample.csv" in page

    for obligation in crm["request"].obligations.all():  # the certificate is issued for a closed request
        services.obligation_resolve(obligation=obligation, actor=world["officer"],
                                    status=ObligationStatus.NOT_APPLICABLE, reason="Test.")
    services.erasure_request_close(request=crm["request"], actor=world["officer"])
    pdf = client.get(f"/erasure/{crm['request'].pk}/certificate.pdf")
    assert pdf.status_code == 200
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Stored files purged" in text and _sha(COPY)[:16] in text.replace("\n", "")


def test_purge_refusals(world, crm, outsider):
    with pytest.raises(Forbidden):
        services.obligation_purge_files(obligation=crm["obligation"], actor=outsider)
    version_obligation = crm["request"].obligations.filter(kind="model_version").first()
    with pytest.raises(InvalidInput, match="dataset"):
        services.obligation_purge_files(obligation=version_obligation, actor=world["officer"])
    for obligation in crm["request"].obligations.all():
        services.obligation_resolve(obligation=obligation, actor=world["officer"],
                                    status=ObligationStatus.NOT_APPLICABLE, reason="Test.")
    request = services.erasure_request_close(request=crm["request"], actor=world["officer"])
    assert request.state == ErasureState.CLOSED
    with pytest.raises(InvalidState, match="closed"):
        services.obligation_purge_files(obligation=crm["obligation"], actor=world["officer"])
    assert TrackedArtifact.objects.filter(path="data/customers.csv").exists()  # nothing was purged


def test_purge_through_the_api_and_the_page(world, crm, api_client_for):
    api = api_client_for(world["officer"])
    url = f"/api/v1/erasure-requests/{crm['request'].pk}/obligations"
    r = api.post(f"{url}/{crm['obligation'].pk}/purge-files")
    assert r.status_code == 200, r.content
    row = next(o for o in r.json()["obligations"] if o["id"] == crm["obligation"].pk)
    assert row["files_purged"]["blobs_deleted"] == [_sha(COPY)] and row["files_purged_at"]
    assert api.post(f"{url}/999999/purge-files").status_code == 400
    assert api_client_for(world["owner"]).post(f"{url}/{crm['obligation'].pk}/purge-files").status_code in (403, 404)

    client = Client()
    client.force_login(world["officer"])
    page = client.post(f"/erasure/{crm['request'].pk}/",
                       {"action": "purge_files", "obligation": "not-a-number"}, follow=True)
    assert page.status_code in (200, 400) and "Unknown obligation" in page.content.decode()
    page = client.post(f"/erasure/{crm['request'].pk}/",
                       {"action": "purge_files", "obligation": crm["obligation"].pk}, follow=True)
    assert "Purged 0 stored file(s)" in page.content.decode()  # already purged: nothing left to delete
