"""Rescan when the rules change: scans made by an older scanner version are redone by a beat task, files that are
now unsafe are quarantined with an event that webhooks deliver, and progress shows on a page and in the API."""

from __future__ import annotations

import pytest

from registry import tasks
from registry.models import Artifact, ArtifactScan, ScannerRescan
from registry.pipeline.scan.analysis import SCANNER
from registry.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.registry.scan_corpus import _images, onnx_with_external_data

pytestmark = pytest.mark.django_db


def test_a_rules_change_rescans_quarantines_newly_unsafe_files_and_reports_progress(
        registered_model, make_version, django_capture_on_commit_callbacks, api_client_for, staff, owner, client):
    png = _images()["photo.png"]
    with django_capture_on_commit_callbacks(execute=True):
        version = make_version(registered_model, files={"model.onnx": onnx_with_external_data(), "photo.png": png})
    # What the previous scanner recorded: the ONNX file clean, the PNG quarantined as a partial pickle.
    ArtifactScan.objects.filter(artifact__path="model.onnx").update(
        scanner="stratum-opcode-walk/1", verdict="not_pickle", quarantined=False, offending=[])
    ArtifactScan.objects.filter(artifact__path="photo.png").update(
        scanner="stratum-opcode-walk/1", verdict="error", quarantined=True,
        detail="partly parses as a pickle (...); quarantined")
    Artifact.objects.filter(path="photo.png").update(format="binary")
    WebhookSubscription.objects.create(url="https://hooks.example.com/x", secret="whsec_x", created_by=owner,
                                       event_types=["model_version.artifact_quarantined", "scanner.rescan_finished"])
    api = api_client_for(staff)
    body = api.get("/api/v1/scans/rescan").json()
    assert body["state"] == "pending" and body["remaining"] == 2 and body["scanner"] == SCANNER

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.scanner_rescan_tick() == 2  # queued (and, eagerly here, ran) both rescans
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.scanner_rescan_tick() == 0  # nothing left: the rescan finishes
    onnx = ArtifactScan.objects.get(artifact__path="model.onnx")
    assert onnx.scanner == SCANNER and onnx.quarantined and onnx.verdict == "unsafe"
    photo = ArtifactScan.objects.get(artifact__path="photo.png")
    assert photo.scanner == SCANNER and not photo.quarantined and photo.verdict == "not_pickle"
    assert Artifact.objects.get(version=version, path="photo.png").format == "image"
    rescan = ScannerRescan.objects.get(scanner=SCANNER)
    assert rescan.finished and rescan.total == 2 and rescan.newly_quarantined == 1

    from governance.models import AuditEvent

    quarantined = AuditEvent.objects.get(action="model_version.artifact_quarantined")
    assert quarantined.data["path"] == "model.onnx" and quarantined.data["previous_scanner"] == "stratum-opcode-walk/1"
    assert AuditEvent.objects.filter(action="model_version.artifact_rescanned", data__path="photo.png").exists()
    assert AuditEvent.objects.filter(action="scanner.rescan_finished").count() == 1
    sent = set(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert sent == {"model_version.artifact_quarantined", "scanner.rescan_finished"}

    body = api.get("/api/v1/scans/rescan").json()
    assert body["state"] == "finished" and body["done"] == 2 and body["percent"] == 100
    assert body["newly_quarantined"] == 1
    assert api_client_for(owner).get("/api/v1/scans/rescan").status_code == 403
    client.force_login(staff)
    page = client.get("/scanner/")
    assert page.status_code == 200 and "2 of 2 files" in page.content.decode() and "1 newly quarantined" in \
        page.content.decode()
    client.force_login(owner)
    assert client.get("/scanner/").status_code == 403


def test_nothing_to_rescan_is_idle(api_client_for, staff):
    assert tasks.scanner_rescan_tick() == 0
    assert api_client_for(staff).get("/api/v1/scans/rescan").json()["state"] == "idle"
    assert not ScannerRescan.objects.exists()
