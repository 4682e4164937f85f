"""GDPR erasure: keyed manifests, impact through lineage, obligations, deadlines, suppression, no personal data."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.management import call_command

from governance.erasure import hashing, services
from governance.models import ErasureState, ObligationStatus, SubjectHash
from registry import services as registry_services
from registry.errors import Forbidden, InvalidInput, InvalidState
from registry.lineage import services as lineage
from tests.governance.conftest import OTHERS, SUBJECT


def test_manifests_store_only_keyed_hashes(world):
    digests = set(SubjectHash.objects.values_list("digest", flat=True))
    assert hashing.subject_hash(SUBJECT) in digests and len(digests) == 3
    assert all(len(d) == 64 and "@" not in d for d in digests)
    world["d1"].refresh_from_db()
    assert world["d1"].contains_personal_data


def test_the_request_finds_exactly_the_affected_items(world):
    request = services.erasure_request_create(actor=world["officer"], identifier=SUBJECT,
                                              received_on=date(2026, 11, 2))
    labels = {(o.kind, o.label) for o in request.obligations.all()}
    assert labels == {("dataset", "customers 2026-01"), ("dataset", "events 2026-01"),
                      ("model_version", "churn v1"), ("model_version", "churn v2"), ("model_version", "churn v3"),
                      ("deployment", "churn-prod"), ("feature_set", "event-features@7")}
    assert request.deadline == date(2026, 12, 2)
    assert request.subject_hash == hashing.subject_hash(SUBJECT)


def test_closing_with_an_unresolved_obligation_is_refused(world):
    officer = world["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    with pytest.raises(InvalidState, match="unresolved"):
        services.erasure_request_close(request=request, actor=officer)
    for obligation in request.obligations.all():
        services.obligation_resolve(obligation=obligation, actor=officer, status=ObligationStatus.NOT_APPLICABLE,
                                    reason="Test resolution.")
    request = services.erasure_request_close(request=request, actor=officer)
    assert request.state == ErasureState.CLOSED


def test_resolutions_need_their_evidence(world):
    officer, owner = world["officer"], world["owner"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    ob = {o.label: o for o in request.obligations.all()}
    purged = lineage.node_create(actor=owner, kind="dataset", name="customers", version="2026-02").obj
    with pytest.raises(InvalidInput, match="manifest"):
        services.obligation_resolve(obligation=ob["customers 2026-01"], actor=officer,
                                    status=ObligationStatus.DATASET_PURGED, replacement_node=purged)
    services.manifest_upload(node=purged, actor=officer, identifiers=[SUBJECT])
    with pytest.raises(InvalidState, match="still holds"):
        services.obligation_resolve(obligation=ob["customers 2026-01"], actor=officer,
                                    status=ObligationStatus.DATASET_PURGED, replacement_node=purged)
    services.manifest_upload(node=purged, actor=officer, identifiers=OTHERS)
    done = services.obligation_resolve(obligation=ob["customers 2026-01"], actor=officer,
                                       status=ObligationStatus.DATASET_PURGED, replacement_node=purged)
    assert done.status == ObligationStatus.DATASET_PURGED and done.resolved_by == officer
    with pytest.raises(InvalidState, match="itself affected"):
        services.obligation_resolve(obligation=ob["churn v1"], actor=officer, status=ObligationStatus.MODEL_RETRAINED,
                                    replacement_version=world["versions"][2])
    services.obligation_resolve(obligation=ob["churn v1"], actor=officer, status=ObligationStatus.MODEL_RETRAINED,
                                replacement_version=world["versions"][3])
    with pytest.raises(InvalidState, match="Deprecate"):
        services.obligation_resolve(obligation=ob["churn v2"], actor=officer,
                                    status=ObligationStatus.MODEL_DEPRECATED)
    registry_services.version_deprecate(version=world["versions"][1], actor=owner, reason="GDPR erasure.")
    services.obligation_resolve(obligation=ob["churn v2"], actor=officer, status=ObligationStatus.MODEL_DEPRECATED)
    with pytest.raises(InvalidInput, match="ground"):
        services.obligation_resolve(obligation=ob["churn v3"], actor=officer, status=ObligationStatus.EXEMPT,
                                    reason="Needed for a pending court case.")
    services.obligation_resolve(obligation=ob["churn v3"], actor=officer, status=ObligationStatus.EXEMPT, ground="e",
                                reason="Needed for a pending court case.")


def test_deadline_extension_needs_a_reason_and_is_granted_once(world):
    officer = world["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT, received_on=date(2026, 10, 31))
    assert request.deadline == date(2026, 11, 30)
    with pytest.raises(InvalidInput):
        services.erasure_request_extend(request=request, actor=officer, reason="", notified_on=date(2026, 11, 5))
    request = services.erasure_request_extend(request=request, actor=officer, reason="Many datasets involved.",
                                              notified_on=date(2026, 11, 5))
    assert request.deadline == date(2027, 1, 31) and request.extended
    with pytest.raises(InvalidState, match="already"):
        services.erasure_request_extend(request=request, actor=officer, reason="Again.", notified_on=date(2026, 11, 6))


def test_only_handlers_open_requests(world, outsider):
    with pytest.raises(Forbidden):
        services.erasure_request_create(actor=outsider, identifier=SUBJECT)


def test_suppression_list_flags_reingested_subjects(world):
    officer, owner = world["officer"], world["owner"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    for obligation in request.obligations.all():
        services.obligation_resolve(obligation=obligation, actor=officer, status=ObligationStatus.NOT_APPLICABLE,
                                    reason="Test resolution.")
    services.erasure_request_close(request=request, actor=officer)
    later = lineage.node_create(actor=owner, kind="dataset", name="customers", version="2026-06").obj
    manifest = services.manifest_upload(node=later, actor=officer, identifiers=[SUBJECT.upper().lower(), "new@x.org"])
    assert manifest.suppressed_hits == 1
    request.refresh_from_db()
    assert later.pk in request.suppressed_reingestions


def test_no_raw_identifier_anywhere_in_the_database(world):
    officer = world["officer"]
    request = services.erasure_request_create(actor=officer, identifier=SUBJECT)
    for obligation in request.obligations.all():
        services.obligation_resolve(obligation=obligation, actor=officer, status=ObligationStatus.NOT_APPLICABLE,
                                    reason="Not in scope for this test.")
    services.erasure_request_close(request=request, actor=officer)
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    text = dump.getvalue()
    assert "erasure_request.closed" in text and "subject_manifest.uploaded" in text
    for secret in (SUBJECT, "jane.doe", *OTHERS):
        assert secret not in text


def test_a_second_open_request_for_the_same_subject_is_refused(world):
    services.erasure_request_create(actor=world["officer"], identifier=SUBJECT)
    with pytest.raises(InvalidState, match="still open"):
        services.erasure_request_create(actor=world["officer"], identifier=f"  {SUBJECT} ")
