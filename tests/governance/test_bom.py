"""The signed AI-BOM: a CycloneDX 1.7 ML-BOM per version, valid against the official schema, covered by the
version's signature, served to whoever can see the model, appended to the PDF card."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from django.core.files.storage import storages
from pypdf import PdfReader

from governance.cards import bom
from registry.models import Blob, Job, JobState, SignatureVerification

pytestmark = pytest.mark.django_db

FILES = {"model/model.onnx": b"\x08\x07onnx-bytes", "model/MLmodel": b"flavors: {}\n", "README.md": b"# v1\n"}


@pytest.fixture(autouse=True)
def signing_key(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.STRATUM_SIGNING_KEY = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode()


@pytest.fixture
def version(registered_model, make_version):
    return make_version(registered_model, files=FILES, metrics={"auc": 0.91}, code_repository="https://git.example/c",
                        code_commit="c" * 40, environment=["scikit-learn==1.9.1", "numpy==2.4.6", "onnx"],
                        datasets=[{"name": "events-2026", "uri": "s3://d/2026", "digest": "sha256:" + "1" * 64,
                                   "role": "train"},
                                  {"name": "holdout-2026", "uri": "s3://d/h", "role": "test"}])


def test_the_bom_validates_against_the_official_schema_and_says_what_the_version_is(version, owner,
                                                                                   api_client_for):
    response = api_client_for(owner).get("/api/v1/models/churn/versions/1/bom")
    assert response.status_code == 200 and response["Content-Type"] == bom.MEDIA_TYPE
    assert response["X-Stratum-Bom-Signed"] == "false"
    doc = json.loads(response.content)
    # Independently of bom.py's own check: the library's strict validator over the official 1.7 schema.
    assert JsonStrictValidator(SchemaVersion.V1_7).validate_str(response.content.decode()) is None
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.7"
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "churn"
    assert {"type": "auc", "value": "0.91"} in model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    files = {c["name"]: c["hashes"][0] for c in doc["components"] if c["type"] == "file"}
    assert files == {p: {"alg": "SHA-256", "content": hashlib.sha256(b).hexdigest()} for p, b in FILES.items()}
    data = [c for c in doc["components"] if c["type"] == "data"]
    assert sorted(c["name"] for c in data) == ["events-2026", "holdout-2026"]
    assert all(c["data"][0]["type"] == "dataset" for c in data)
    assert len(model["modelCard"]["modelParameters"]["datasets"]) == 2
    libraries = {c["name"]: c for c in doc["components"] if c["type"] == "library"}
    assert libraries["scikit-learn"]["purl"] == "pkg:pypi/scikit-learn@1.9.1" and "version" not in libraries["onnx"]
    depends = next(d["dependsOn"] for d in doc["dependencies"] if d["ref"] == "model")
    assert {libraries[n]["bom-ref"] for n in libraries} <= set(depends)
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert refs["digital-signature"] == "/api/v1/models/churn/versions/1/signature/bundle"
    assert refs["vcs"] == "https://git.example/c"


def test_the_card_fills_the_model_card_section(version, owner, api_client_for):
    client = api_client_for(owner)
    client.put("/api/v1/models/churn/versions/1/card", {"section": "intended_use", "values": {
        "primary_uses": "Rank accounts by churn risk.", "primary_users": "Retention team."}}, format="json")
    doc = client.get("/api/v1/models/churn/versions/1/bom").json()
    considerations = doc["metadata"]["component"]["modelCard"]["considerations"]
    assert considerations["useCases"] == ["Rank accounts by churn risk."]
    assert considerations["users"] == ["Retention team."]


def test_outsiders_get_404_and_bad_refs_4xx(version, outsider, owner, api_client_for):
    assert api_client_for(outsider).get("/api/v1/models/churn/versions/1/bom").status_code == 404
    client = api_client_for(owner)
    for ref in ("99", "v0", "no-such-alias", "%2e%2e"):
        response = client.get(f"/api/v1/models/churn/versions/{ref}/bom")
        assert 400 <= response.status_code < 500, ref
        assert "detail" in response.json() or "error" in response.json()


def sign(client, hooks):
    with hooks(execute=True):
        assert client.post("/api/v1/models/churn/versions/1/signature").status_code == 202
    job = Job.objects.get(kind="sign")
    assert job.state == JobState.SUCCEEDED, job.error


def verify(client, hooks):
    with hooks(execute=True):
        assert client.post("/api/v1/models/churn/versions/1/signature/verify").status_code == 202
    return SignatureVerification.objects.first()


def test_the_signature_covers_the_bom_and_a_changed_bom_fails_verification(version, owner, api_client_for,
                                                                           django_capture_on_commit_callbacks):
    client = api_client_for(owner)
    sign(client, django_capture_on_commit_callbacks)
    response = client.get("/api/v1/models/churn/versions/1/bom")
    assert response["X-Stratum-Bom-Signed"] == "true"
    signature = version.signatures.first()
    path = ".stratum/bom.cdx.json"
    assert signature.manifest[path] == hashlib.sha256(response.content).hexdigest()
    assert verify(client, django_capture_on_commit_callbacks).ok
    # The stored BOM's bytes change (a tampered store): model-signing catches it and names the document.
    blob = Blob.objects.get(pk=signature.manifest[path])
    doc = json.loads(response.content)
    doc["components"] = [c for c in doc["components"] if c["type"] != "data"]  # hide the datasets
    Path(storages["artifacts"].path(blob.storage_name)).write_bytes(bom.bom_bytes(doc))
    result = verify(client, django_capture_on_commit_callbacks)
    assert not result.ok and result.changed == [path]


def test_the_pdf_card_ends_with_the_bom(version, owner, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(owner)
    client.put("/api/v1/models/churn/versions/1/card", {"section": "intended_use", "values": {
        "primary_uses": "Rank accounts."}}, format="json")
    sign(client, django_capture_on_commit_callbacks)
    digest = hashlib.sha256(client.get("/api/v1/models/churn/versions/1/bom").content).hexdigest()
    response = client.get("/api/v1/models/churn/versions/1/card?format=pdf")
    assert response.status_code == 200
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(response.content)).pages)
    flat = " ".join(text.split())
    assert "AI-BOM (CycloneDX 1.7)" in flat and "signed" in flat
    assert digest[:32] in flat.replace(" ", "") and "events-2026" in flat and "scikit-learn" in flat


def test_the_version_page_links_the_bom(version, owner, client):
    client.force_login(owner)
    page = client.get("/models/churn/versions/1/").content.decode()
    assert 'href="/api/v1/models/churn/versions/1/bom"' in page and "AI-BOM (CycloneDX)" in page


def test_blob_collection_keeps_the_signed_bom(version, owner, api_client_for, django_capture_on_commit_callbacks):
    """Only the signature's manifest names the signed BOM's blob: collection must still count it as in use."""
    from registry.artifacts import gc

    client = api_client_for(owner)
    sign(client, django_capture_on_commit_callbacks)
    bom_sha = version.signatures.first().manifest[".stratum/bom.cdx.json"]
    gc.store_collect(grace=0)
    gc.store_collect(grace=0)
    assert bom_sha not in {d for d, _ in gc.store_collect(grace=0).deleted}
    assert client.get("/api/v1/models/churn/versions/1/bom")["X-Stratum-Bom-Signed"] == "true"
    assert verify(client, django_capture_on_commit_callbacks).ok
