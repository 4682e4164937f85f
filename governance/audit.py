"""The tamper-evident audit trail: canonical JSON, the hash chain, serialised appends and verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from governance import context, signing
from governance.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from governance.timestamps import iso

# Any constant works: it only has to be the same for every writer of the chain.
ADVISORY_LOCK_KEY = 0x5354524154554D  # "STRATUM"
HASHED_FIELDS = (
    "seq", "created_at", "actor_id", "actor_username", "token_prefix", "action", "target_type", "target_id",
    "target_label", "model_id", "model_name", "version_number", "data", "request_id", "client_ip", "prev_hash",
)
VERIFY_CHUNK = 5000


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Serialise `value` the one way the chain hashes it: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default,
                      allow_nan=False)


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous event's hash followed by this event's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode()).hexdigest()


def _fields_of(row: dict[str, Any]) -> dict[str, Any]:
    fields = {name: row[name] for name in HASHED_FIELDS}
    fields["created_at"] = iso(fields["created_at"])
    return fields


def lock_chain() -> None:
    """Serialise appends: on PostgreSQL an advisory lock held to the end of the transaction.

    SQLite needs nothing more: Stratum opens its write transactions IMMEDIATE, so only one writer runs at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])


def _actor_fields(actor: Any) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor_id": None, "actor_username": "system" if actor is None else "anonymous", "token_prefix": ""}
    token = getattr(actor, "stratum_token", None)
    return {"actor_id": actor.pk, "actor_username": actor.get_username(),
            "token_prefix": getattr(token, "prefix", "") or ""}


def append(
    *, action: str, actor: Any, target_type: str, target_id: Any, target_label: str, data: dict[str, Any] | None,
    model_id: int | None = None, model_name: str = "", version_number: int | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction (one head read and one INSERT)."""
    ctx = context.current()
    # No savepoint: a failed append must fail the caller's whole transaction anyway (an unaudited change never
    # commits), so the two extra round trips of a savepoint buy nothing.
    with transaction.atomic(savepoint=False):
        lock_chain()
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        fields: dict[str, Any] = {
            "seq": seq,
            "created_at": timezone.now(),
            **_actor_fields(actor),
            "action": action,
            "target_type": target_type,
            "target_id": "" if target_id is None else str(target_id),
            "target_label": (target_label or "")[:512],
            "model_id": model_id,
            "model_name": model_name or "",
            "version_number": version_number,
            # Round-trip the payload so what is stored is exactly what was hashed (datetimes become strings).
            "data": json.loads(canonical_json(data or {})),
            "request_id": ctx.request_id,
            "client_ip": ctx.client_ip,
            "prev_hash": prev_hash,
        }
        digest = event_hash(prev_hash, _fields_of(fields))
        return AuditEvent.objects.create(**fields, hash=digest)


# ------------------------------------------------------------------------------------------- verification


@dataclass
class Verdict:
    """The outcome of walking the chain: how far it got and, when broken, the first bad sequence number."""

    ok: bool = True
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, seq: int | None, message: str) -> None:
        """Record a problem; the first one names the first broken sequence number."""
        if self.ok:
            self.first_bad_seq = seq
        self.ok = False
        self.problems.append(message)

    @property
    def summary(self) -> str:
        if self.ok:
            return (f"Audit chain intact: {self.events} event(s), head #{self.head_seq} {self.head_hash[:16]}…, "
                    f"{self.checkpoints} signed checkpoint(s) verified.")
        return f"Audit chain BROKEN at sequence #{self.first_bad_seq}: {self.problems[0]}"


def _rows() -> Iterator[dict[str, Any]]:
    columns = (*HASHED_FIELDS, "hash")
    for values in AuditEvent.objects.order_by("seq").values_list(*columns).iterator(chunk_size=VERIFY_CHUNK):
        yield dict(zip(columns, values, strict=True))


def verify(*, check_signatures: bool = True) -> Verdict:
    """Walk the whole chain in order, recomputing every hash, then check the signed checkpoints against it."""
    verdict = Verdict()
    checkpoints = {cp.seq: cp for cp in AuditCheckpoint.objects.order_by("seq")}
    prev_hash, expected_seq = GENESIS_HASH, 1
    seen_checkpoints = 0
    for row in _rows():
        seq = row["seq"]
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order"
            verdict.fail(expected_seq if seq > expected_seq else seq,
                         f"sequence jumps from #{expected_seq - 1} to #{seq} (event(s) {what})")
        if row["prev_hash"] != prev_hash:
            verdict.fail(seq, f"event #{seq} does not point at the hash of the event before it")
        elif event_hash(prev_hash, _fields_of(row)) != row["hash"]:
            verdict.fail(seq, f"event #{seq} was altered: its content no longer matches its hash")
        checkpoint = checkpoints.get(seq)
        if checkpoint is not None:
            seen_checkpoints += 1
            if checkpoint.head_hash != row["hash"]:
                verdict.fail(seq, f"event #{seq} differs from the signed checkpoint taken at that point")
        if not verdict.ok and len(verdict.problems) >= 20:
            break
        prev_hash, expected_seq = row["hash"], seq + 1
        verdict.events += 1
        verdict.head_seq, verdict.head_hash = seq, row["hash"]
    if verdict.ok and seen_checkpoints != len(checkpoints):
        missing = min((seq for seq in checkpoints if seq > verdict.head_seq), default=None)
        verdict.fail(missing, f"a signed checkpoint names event #{missing}, which is no longer in the chain")
    if check_signatures:
        for checkpoint in checkpoints.values():
            if not signing.verify_checkpoint(checkpoint):
                verdict.fail(checkpoint.seq, f"the checkpoint at #{checkpoint.seq} has an invalid signature")
    verdict.checkpoints = len(checkpoints) if verdict.ok else seen_checkpoints
    return verdict


def verify_cached(*, max_age: int = 300, force: bool = False) -> tuple[Verdict, datetime]:
    """Return a verdict at most `max_age` seconds old for the current head (pages must not walk 100k rows per view)."""
    from django.core.cache import cache

    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS_HASH)
    key = f"stratum:audit-verdict:{head[0]}:{head[1]}:{AuditCheckpoint.objects.count()}"
    cached = None if force else cache.get(key)
    if cached is None:
        cached = (verify(), timezone.now())
        cache.set(key, cached, max_age)
    return cached
