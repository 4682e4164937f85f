"""The audit trail: every registry write is recorded in its transaction, chained, verifiable and tamper-evident."""

from __future__ import annotations

import contextlib
import io
import itertools
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from governance import audit, services, signing
from governance.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from registry import services as registry_services
from registry.errors import InvalidInput
from tests.conftest import need_service

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def dba():
    """A cursor that writes to the audit table as a DBA would: on PostgreSQL with its triggers disabled."""
    with connection.cursor() as cursor:
        postgres = connection.vendor == "postgresql"
        if postgres:
            cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER USER")
        yield cursor
        if postgres:
            cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER USER")


def json_param() -> str:
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


@pytest.fixture
def history(owner, registered_model, make_version):
    """A model with a few versions, tags and an alias: a dozen audit events."""
    v1 = make_version(registered_model, metrics={"auc": 0.8})
    v2 = make_version(registered_model, metrics={"auc": 0.9})
    registry_services.model_tag_set(model=registered_model, actor=owner, key="team", value="ml")
    registry_services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    registry_services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
    registry_services.version_transition_stage(version=v2, actor=owner, stage="Production")
    return registered_model


def test_each_registry_write_is_recorded_with_actor_target_and_payload(owner, history):
    rows = list(AuditEvent.objects.order_by("seq"))
    actions = [row.action for row in rows]
    assert actions == [
        "registered_model.created", "model_version.created", "model_version.created", "registered_model.tag_set",
        "model_version_alias.set", "model_version_alias.set", "model_version.stage_transitioned",
    ]
    assert [row.seq for row in rows] == list(range(1, 8))
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    moved = rows[5]
    assert moved.actor_username == "owner" and moved.actor_id == owner.pk
    assert (moved.target_type, moved.target_label, moved.model_name, moved.version_number) == (
        "registry.modelversion", "churn v2", "churn", 2)
    assert moved.data == {"alias": "champion", "from_version": 1, "to_version": 2}
    assert rows[3].data == {"key": "team", "before": None, "after": "ml"}
    assert audit.verify().ok


def test_a_failed_write_leaves_no_audit_row(owner, registered_model):
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput):
        registry_services.model_tag_set(model=registered_model, actor=owner, key="", value="x")
    assert AuditEvent.objects.count() == before


def test_an_event_rolls_back_with_its_transaction(owner, registered_model):
    before = AuditEvent.objects.count()
    with contextlib.suppress(RuntimeError), transaction.atomic():
        registry_services.model_tag_set(model=registered_model, actor=owner, key="k", value="v")
        raise RuntimeError("the caller fails after the service")
    assert AuditEvent.objects.count() == before
    assert audit.verify().ok


def test_api_writes_record_token_request_id_and_client_ip(owner, registered_model, api_client_for):
    client = api_client_for(owner)
    response = client.put("/api/v1/models/churn/tags/team", {"value": "ml"}, format="json",
                          HTTP_X_REQUEST_ID="req-12345678", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == "req-12345678"
    row = AuditEvent.objects.get(action="registered_model.tag_set")
    token = owner.access_tokens.get()
    assert (row.request_id, row.client_ip, row.token_prefix) == ("req-12345678", "10.1.2.3", token.prefix)


def test_request_ids_are_generated_when_missing_or_malformed(owner, registered_model, api_client_for):
    client = api_client_for(owner)
    response = client.put("/api/v1/models/churn/tags/a", {"value": "1"}, format="json", HTTP_X_REQUEST_ID="<bad>")
    assert response.status_code == 200
    row = AuditEvent.objects.get(action="registered_model.tag_set")
    assert len(row.request_id) == 32 and row.request_id == response["X-Request-ID"]


def test_canonical_json_is_sorted_and_compact():
    assert audit.canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'


# ---------------------------------------------------------------------------------------------- tampering


def _verify_command() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_verify_audit_command_reports_an_intact_chain(history):
    assert "Audit chain intact: 7 event(s)" in _verify_command()


def test_payload_tampering_is_detected(history):
    with dba() as cursor:
        cursor.execute(f"UPDATE governance_auditevent SET data = {json_param()} WHERE seq = 4",  # noqa: S608
                       [json.dumps({"key": "team", "before": None, "after": "fraud"})])
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad_seq == 4
    assert "altered" in verdict.problems[0]
    with pytest.raises(CommandError, match=r"BROKEN at sequence #4"):
        _verify_command()


def test_label_tampering_is_detected(history):
    with dba() as cursor:
        cursor.execute("UPDATE governance_auditevent SET actor_username = 'someone-else' WHERE seq = 2")
    assert audit.verify().first_bad_seq == 2


def test_deletion_is_detected(history):
    with dba() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE seq = 3")
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert "missing" in verdict.problems[0]


def test_reordering_is_detected(history):
    with dba() as cursor:
        cursor.execute("UPDATE governance_auditevent SET seq = -1 WHERE seq = 5")
        cursor.execute("UPDATE governance_auditevent SET seq = 5 WHERE seq = 6")
        cursor.execute("UPDATE governance_auditevent SET seq = 6 WHERE seq = -1")
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad_seq == 5


def _forge_at(seq: int) -> None:
    """Insert a well-formed forged event at `seq`, shifting the later ones up (a careful attacker)."""
    previous = AuditEvent.objects.get(seq=seq - 1)
    with dba() as cursor:
        for later in AuditEvent.objects.filter(seq__gte=seq).order_by("-seq").values_list("seq", flat=True):
            cursor.execute("UPDATE governance_auditevent SET seq = seq + 1 WHERE seq = %s", [later])
    fields = {name: getattr(previous, name) for name in audit.HASHED_FIELDS}
    fields.update(seq=seq, action="model_version_alias.set", data={"alias": "champion", "to_version": 1},
                  prev_hash=previous.hash)
    digest = audit.event_hash(previous.hash, {**fields, "created_at": audit.iso(fields["created_at"])})
    AuditEvent.objects.bulk_create([AuditEvent(**fields, hash=digest)])


def test_insertion_is_detected(history):
    _forge_at(4)
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad_seq == 5
    assert "does not point at" in verdict.problems[0]


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(history, owner):
    checkpoint = services.audit_checkpoint_create()
    assert checkpoint.seq == 7 and signing.verify_checkpoint(checkpoint)
    _forge_at(4)
    # The attacker recomputes every later hash, so the chain itself is consistent again ...
    prev = AuditEvent.objects.get(seq=4).hash
    with dba() as cursor:
        for row in AuditEvent.objects.filter(seq__gt=4).order_by("seq"):
            fields = {name: getattr(row, name) for name in audit.HASHED_FIELDS}
            fields.update(prev_hash=prev, created_at=audit.iso(row.created_at))
            digest = audit.event_hash(prev, fields)
            cursor.execute("UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
                           [prev, digest, row.seq])
            prev = digest
    verdict = audit.verify()
    # ... but the event the checkpoint signed (#7) no longer has the signed hash.
    assert not verdict.ok and verdict.first_bad_seq == 7
    assert "checkpoint" in verdict.problems[0]


def test_a_truncated_chain_is_caught_by_the_checkpoint(history):
    services.audit_checkpoint_create()
    with dba() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE seq = 7")
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad_seq == 7


def test_a_forged_checkpoint_signature_is_refused(history):
    checkpoint = services.audit_checkpoint_create()
    forged = AuditCheckpoint(seq=7, head_hash=checkpoint.head_hash, created_at=checkpoint.created_at,
                             key_id=checkpoint.key_id, signature=checkpoint.signature[:-8] + "AAAAAAA=")
    assert not signing.verify_checkpoint(forged)


def test_checkpoints_are_only_written_when_the_chain_grew(history, owner):
    first = services.audit_checkpoint_create()
    assert services.audit_checkpoint_create() is None
    registry_services.model_tag_set(model=history, actor=owner, key="x", value="y")
    second = services.audit_checkpoint_create()
    assert second.seq == first.seq + 1
    assert audit.verify().checkpoints == 2


def test_the_beat_task_signs_a_checkpoint(history):
    from governance.tasks import audit_checkpoint_create

    assert audit_checkpoint_create.delay().get() == 7


def test_signing_key_from_settings_pem(history, settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with override_settings(STRATUM_SIGNING_KEY=pem):
        checkpoint = services.audit_checkpoint_create()
        assert signing.verify_checkpoint(checkpoint)
        assert "BEGIN PUBLIC KEY" in signing.public_key_pem()
    # Under another key, the checkpoint no longer verifies: a database copy cannot be re-signed elsewhere.
    assert not signing.verify_checkpoint(checkpoint)
    assert not audit.verify().ok


# ------------------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
def test_postgresql_trigger_refuses_update_and_delete(history):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL (CI sets it)")
    for statement in ("UPDATE governance_auditevent SET action = 'x' WHERE seq = 1",
                      "DELETE FROM governance_auditevent WHERE seq = 1"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(action="x")
    assert AuditEvent.objects.filter(action="x").count() == 0
    assert audit.verify().ok
