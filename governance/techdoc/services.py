"""Assemble a version's Annex IV technical documentation, hash it, and record each generation in the audit trail."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from governance import audit
from governance.audit import canonical_json
from governance.models import AuditEvent
from governance.techdoc.facts import facts_load
from governance.techdoc.sections import BUILDERS
from registry.errors import InvalidInput
from registry.models import ModelVersion

FORMATS = ("json", "pdf")
GENERATED_ACTION = "technical_documentation.generated"
REGULATION = "Regulation (EU) 2024/1689 (AI Act), Article 11(1) and Annex IV"
# Fields added around the hashed document: who generated it and when change with every generation, its hash and
# audit event cannot be inside what they describe.
UNHASHED = ("sha256", "hash_covers", "generated_at", "generated_by", "audit_event", "format")


@dataclass
class Generated:
    """One generation of the document: the JSON (hash and audit event included) and its audit event."""

    document: dict[str, Any]
    event: AuditEvent


def techdoc_format(raw: Any) -> str:
    """Return the requested format (json when absent) or raise InvalidInput naming the accepted ones."""
    fmt = "json" if raw in (None, "") else str(raw)
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown format {fmt[:40]!r}; use one of {', '.join(FORMATS)}.",
                           details={"field": "format", "allowed": list(FORMATS)})
    return fmt


def techdoc_build(*, version: ModelVersion, actor: Any) -> dict[str, Any]:
    """Return the nine Annex IV sections of an already visible version and every gap, without a hash."""
    facts = facts_load(version=version, actor=actor)
    sections = [build(facts).as_dict() for build in BUILDERS]
    return {
        "document": "Technical documentation of a high-risk AI system",
        "regulation": REGULATION,
        "model": version.model.name,
        "version": version.number,
        "semver": version.semver or None,
        "sections": sections,
        "gaps": [{"section": s["number"], "title": s["title"], "missing": missing}
                 for s in sections for missing in s["gaps"]],
    }


def techdoc_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the document's canonical JSON (the audit trail's serialisation), generation fields left out."""
    hashed = {k: v for k, v in document.items() if k not in UNHASHED}
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()


@transaction.atomic
def techdoc_generate(*, version: ModelVersion, actor: Any, fmt: str = "json") -> Generated:
    """Build the document of an already visible version, hash it and record the generation (with the hash) in the
    audit trail, in one transaction."""
    fmt = techdoc_format(fmt)
    document = techdoc_build(version=version, actor=actor)
    digest = techdoc_hash(document)
    # Straight into the trail, not a domain event: generating a document changes nothing in the registry, so it
    # must not retire cached reads or reach webhooks as a change.
    event = audit.append(action=GENERATED_ACTION, actor=actor, target_type="registry.modelversion",
                         target_id=version.pk, target_label=str(version), model_id=version.model_id,
                         model_name=version.model.name, version_number=version.number,
                         data={"sha256": digest, "format": fmt, "gaps": len(document["gaps"])})
    document.update({
        "sha256": digest,
        "hash_covers": "SHA-256 of the canonical JSON (sorted keys, compact, UTF-8) of this object without "
                       + ", ".join(UNHASHED),
        "format": fmt,
        "generated_at": event.created_at.isoformat(),
        "generated_by": actor.get_username() if actor is not None else "system",
        "audit_event": {"seq": event.seq, "hash": event.hash},
    })
    return Generated(document=document, event=event)
