"""Signing a version's tree with model-signing, verifying it, and naming every changed, added or removed file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.files.storage import storages

from registry import services
from registry.models import Artifact, Job, JobState, Role, SignatureVerification
from tests.conftest import spooled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def signing_key(settings):
    key = ec.generate_private_key(ec.SECP256R1())
    settings.STRATUM_SIGNING_KEY = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()).decode()
    return key


@pytest.fixture
def signed(registered_model, owner, make_version, api_client_for, django_capture_on_commit_callbacks):
    version = make_version(registered_model, files={"model/model.onnx": b"\x08\x07onnx-bytes",
                                                    "model/MLmodel": b"flavors: {}\n", "README.md": b"# v1\n"})
    client = api_client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/models/churn/versions/1/signature")
    assert response.status_code == 202
    job = Job.objects.get(kind="sign")
    assert job.state == JobState.SUCCEEDED, job.error
    return {"version": version, "client": client}


def verify(client, hooks):
    with hooks(execute=True):
        assert client.post("/api/v1/models/churn/versions/1/signature/verify").status_code == 202
    return SignatureVerification.objects.first()


def test_sign_then_verify_with_the_model_signing_cli(signed, tmp_path, client, signing_key):
    body = signed["client"].get("/api/v1/models/churn/versions/1/signature").json()
    assert body["status"] == "verified" and body["signature"]["files"] == 3
    # Besides the files, the signature covers the AI-BOM that governance registers (.stratum/bom.cdx.json).
    assert body["signature"]["documents"] == [".stratum/bom.cdx.json"]
    pub = client.get("/api/v1/signing-key")
    assert pub.status_code == 200 and pub.content.decode().startswith("-----BEGIN PUBLIC KEY-----")
    assert pub["X-Key-Fingerprint"] == body["signature"]["key_fingerprint"]
    bundle = signed["client"].get("/api/v1/models/churn/versions/1/signature/bundle")
    assert bundle.status_code == 200 and b"dsseEnvelope" in bundle.content
    # An independent check: the model_signing CLI verifies the downloaded bundle over the downloaded files.
    tree = tmp_path / "tree"
    for artifact in Artifact.objects.filter(version=signed["version"]):
        dest = tree / artifact.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(signed["client"].get(f"/api/v1/models/churn/versions/1/artifacts/{artifact.path}")
                         .getvalue())
    (tree / ".stratum").mkdir()
    (tree / ".stratum" / "bom.cdx.json").write_bytes(signed["client"].get("/api/v1/models/churn/versions/1/bom")
                                                    .content)
    (tmp_path / "model.sig").write_bytes(bundle.content)
    (tmp_path / "pub.pem").write_bytes(pub.content)
    cli = [sys.executable, "-m", "model_signing", "verify", "key", "--signature", str(tmp_path / "model.sig"),
           "--public_key", str(tmp_path / "pub.pem"), "--no-ignore-git-paths", str(tree)]
    assert subprocess.run(cli, capture_output=True, timeout=120, check=False).returncode == 0
    (tree / "README.md").write_bytes(b"# tampered\n")
    assert subprocess.run(cli, capture_output=True, timeout=120, check=False).returncode != 0


def test_a_replaced_file_fails_verification_names_it_and_blocks_the_gate(signed, owner,
                                                                         django_capture_on_commit_callbacks):
    from governance import gates
    from governance import services as governance_services
    from governance.models import AuditEvent

    version = signed["version"]
    services.artifact_add(version=version, actor=owner, path="README.md", upload=spooled(b"# changed\n"))
    services.artifact_add(version=version, actor=owner, path="extra.bin", upload=spooled(b"\x00\x01"))
    services.artifact_delete(version=version, actor=owner, path="model/MLmodel")
    result = verify(signed["client"], django_capture_on_commit_callbacks)
    assert not result.ok
    assert result.changed == ["README.md"] and result.added == ["extra.bin"] and result.removed == ["model/MLmodel"]
    assert AuditEvent.objects.filter(action="model_version.signature_verification_failed").count() == 1
    policy = governance_services.protected_target_set(model=version.model, actor=owner, kind="alias",
                                                      name="champion", approvals_required=1)
    gate = next(g for g in gates.evaluate_for(version, policy) if g["key"] == "signature")
    assert gate["status"] == "failed" and "README.md" in gate["detail"]


def test_bytes_changed_in_the_store_are_caught_by_model_signing(signed, django_capture_on_commit_callbacks):
    artifact = Artifact.objects.get(path="README.md")
    Path(storages["artifacts"].path(artifact.blob.storage_name)).write_bytes(b"# swapped on disk\n")
    result = verify(signed["client"], django_capture_on_commit_callbacks)
    assert not result.ok and result.changed == ["README.md"]
    assert signed["client"].get("/api/v1/models/churn/versions/1/signature").json()["status"] == "failed"


def test_untouched_tree_verifies_and_the_gate_passes(signed, owner, django_capture_on_commit_callbacks):
    from governance import gates
    from governance import services as governance_services

    assert verify(signed["client"], django_capture_on_commit_callbacks).ok
    policy = governance_services.protected_target_set(model=signed["version"].model, actor=owner, kind="alias",
                                                      name="champion", approvals_required=1)
    gate = next(g for g in gates.evaluate_for(signed["version"], policy) if g["key"] == "signature")
    assert gate["status"] == "passed"


def test_only_maintainers_sign(registered_model, make_version, make_user, grant, api_client_for):
    make_version(registered_model, files={"a.txt": b"a"})
    contributor = make_user("carol")
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    assert api_client_for(contributor).post("/api/v1/models/churn/versions/1/signature").status_code == 403
    assert api_client_for(make_user("eve")).post("/api/v1/models/churn/versions/1/signature").status_code == 404


def test_verify_enqueue_itself_refuses_viewers_and_hides_the_model_from_strangers(signed, make_user, grant):
    from registry.errors import Forbidden, NotFound
    from registry.pipeline import signing

    version = signed["version"]
    viewer = make_user("vic")
    grant(version.model, viewer, Role.VIEWER)
    before = Job.objects.filter(kind="verify").count()
    with pytest.raises(Forbidden):
        signing.verify_enqueue(version=version, actor=viewer)
    with pytest.raises(NotFound):
        signing.verify_enqueue(version=version, actor=make_user("eve"))
    assert Job.objects.filter(kind="verify").count() == before


def test_panel_shows_the_signature_and_its_buttons(signed, client, owner):
    client.force_login(owner)
    panel = client.get("/models/churn/versions/1/pipeline/", HTTP_HX_REQUEST="true").content.decode()
    assert "Verified" in panel and "Sign files" in panel and "Verify now" in panel and "signature/bundle" in panel
