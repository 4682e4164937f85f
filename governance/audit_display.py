"""How the audit trail reads to a person: a plain-language action, a target named and linked from its model
name and version number (never a database id), and the payload as key/value rows.

Stored events are hash-chained and never rewritten, so labels are derived at display time from the event's
structured columns; that fixes old events as well as new ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

# Actions whose plain reading is not "<entity> <verb>" (the rest are derived from the action name).
ACTION_LABELS: dict[str, str] = {
    "model_version.created": "Version registered",
    "model_version.stage_transitioned": "Version stage changed",
    "model_version.artifact_added": "Artifact added",
    "model_version.artifact_deleted": "Artifact deleted",
    "model_version.artifact_scanned": "Artifact scanned",
    "model_version.artifact_quarantined": "Artifact quarantined",
    "model_version.scan_requested": "Scan requested",
    "model_version.signature_verified": "Signature verified",
    "model_version.tag_set": "Version tag set",
    "model_version.tag_deleted": "Version tag removed",
    "model_version_alias.set": "Alias moved",
    "model_version_alias.deleted": "Alias removed",
    "registered_model.created": "Model created",
    "registered_model.tag_set": "Model tag set",
    "registered_model.tag_deleted": "Model tag removed",
    "promotion.requested": "Promotion requested",
    "promotion.emergency_rollback_started": "Emergency rollback started",
    "promotion.evidence_changed": "Approvals went stale (evidence changed)",
    "model_card.created": "Model card created",
    "protected_target.updated": "Protection rule set",
    "protected_target.deleted": "Protection rule removed",
    "subject_manifest.uploaded": "Subject manifest uploaded",
    "erasure_request.created": "Erasure request recorded",
    "erasure_obligation.resolved": "Erasure obligation resolved",
    "deployment.step_advanced": "Canary step advanced",
    "deployment.analysis_recorded": "Rollout analysis recorded",
    "model.retrain_requested": "Retraining requested",
    "access_token.created": "API token created",
    "access_token.revoked": "API token revoked",
    "account.locked_out": "Sign-in locked out",
    "model_role.granted": "Role granted",
    "model_role.revoked": "Role revoked",
    "lineage_node.created": "Lineage node recorded",
    "lineage_edge.created": "Lineage edge recorded",
    "scanner.rescan_started": "Rescan started",
    "scanner.rescan_finished": "Rescan finished",
}
ENTITY_NAMES = {"registered_model": "model", "model_version": "version", "model_version_alias": "alias",
                "model_card": "model card", "access_token": "API token", "protected_target": "protection rule"}
# Payload keys shown with a clearer name than the key itself.
KEY_LABELS = {"rollback_of": "rollback of deployment", "sha256": "SHA-256"}
SUMMARY_KEYS = 3


def action_label(action: str) -> str:
    """Return `action` in plain words ('model_version_alias.set' -> 'Alias moved')."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    entity, _, verb = action.partition(".")
    words = f"{ENTITY_NAMES.get(entity, entity.replace('_', ' '))} {verb.replace('_', ' ')}".strip()
    return words[:1].upper() + words[1:]


def _version(event: Any) -> str:
    return f"{event.model_name} v{event.version_number}" if event.model_name and event.version_number else ""


def _reverse(name: str, *args: Any) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@dataclass(frozen=True)
class Target:
    """What an event was about, as a person names it, and the page that shows it now (if any)."""

    label: str
    url: str | None


def target(event: Any) -> Target:
    """Name and link an event's target from its model name, version number and payload."""
    kind, data = event.target_type, event.data if isinstance(event.data, dict) else {}
    version, model = _version(event), event.model_name
    if kind == "governance.promotionrequest" and event.target_id:
        return Target(f"Promotion request #{event.target_id}" + (f" ({version})" if version else ""),
                      _reverse("governance:promotion-detail", int(event.target_id)))
    if kind == "governance.modelcard" and version:
        return Target(f"Model card of {version}", _reverse("governance:card", model, event.version_number))
    if kind == "governance.protectedtarget" and model:
        return Target(f"Protection of {model}: {event.target_label}", _reverse("governance:protection", model))
    if kind in ("governance.erasurerequest",) and event.target_id:
        return Target(f"Erasure request #{event.target_id}", _reverse("governance:erasure-detail",
                                                                      int(event.target_id)))
    if kind == "governance.subjectmanifest" and isinstance(data.get("node"), int):
        return Target(f"Subject manifest of {data.get('dataset') or 'dataset node ' + str(data['node'])}",
                      _reverse("governance:subject-manifest", data["node"]))
    endpoint = data.get("endpoint")
    if kind == "deployments.deployment" and isinstance(endpoint, str):
        number = data.get("deployment", event.target_id)
        suffix = f", {version}" if version else ""
        return Target(f"Deployment #{number} of endpoint {endpoint}{suffix}",
                      _reverse("deployments:dashboard", endpoint))
    if kind == "deployments.endpoint" and isinstance(endpoint, str):
        return Target(f"Endpoint {endpoint}", _reverse("deployments:dashboard", endpoint))
    if kind == "registry.lineageedge" and data.get("upstream_label") and isinstance(data.get("downstream"), int):
        verb = str(data.get("kind", "")).replace("_", " ")
        return Target(f"{data['upstream_label']} → {data.get('downstream_label', '')} ({verb})",
                      _reverse("registry:lineage-node", data["downstream"]))
    if kind == "registry.lineagenode" and event.target_id:
        return Target(event.target_label, _reverse("registry:lineage-node", int(event.target_id)))
    if version:
        return Target(version, _reverse("registry:version-detail", model, event.version_number))
    if model:
        return Target(f"Model {model}" if kind == "registry.registeredmodel" else f"{event.target_label} ({model})",
                      _reverse("registry:model-detail", model))
    return Target(event.target_label or "—", None)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return ", ".join(str(v) for v in value) if value else "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def detail_rows(data: Any) -> list[tuple[str, str]]:
    """Return the payload as (label, text) rows in key order; nested values stay as compact JSON."""
    if not isinstance(data, dict):
        return [] if data in (None, "") else [("value", _text(data))]
    return [(KEY_LABELS.get(key, key.replace("_", " ")), _text(value)) for key, value in sorted(data.items())]


def detail_summary(rows: list[tuple[str, str]]) -> str:
    """Return a one-line preview of the first rows (the full rows sit in an expandable block)."""
    preview = "; ".join(f"{label}: {text[:40]}{'…' if len(text) > 40 else ''}" for label, text in rows[:SUMMARY_KEYS])
    more = len(rows) - SUMMARY_KEYS
    return preview + (f"; +{more} more" if more > 0 else "")
