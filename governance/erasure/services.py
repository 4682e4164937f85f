"""Every erasure write: subject manifests, requests with their impact, obligations, extension and closing.

No raw identifier is stored or audited: identifiers are turned into keyed hashes at the door, and audit payloads
carry counts, ids and statuses only (not even the hash).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from types import SimpleNamespace
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance import permissions
from governance.erasure import hashing
from governance.models import (
    ErasureObligation,
    ErasureRequest,
    ErasureState,
    ExemptionGround,
    ObligationStatus,
    SubjectHash,
    SubjectManifest,
    SuppressedSubject,
)
from registry import events, validation
from registry.artifacts import gc
from registry.errors import Forbidden, InvalidInput, InvalidState
from registry.lineage import selectors as lineage_selectors
from registry.lineage import services as lineage
from registry.lineage.models import LineageNode, NodeKind
from registry.models import ModelVersion

MAX_MANIFEST = 1_000_000
# Erasure must see every affected model whoever handles it: impact runs with the authority of the regulation.
REGULATOR = SimpleNamespace(is_authenticated=True, is_staff=True, is_superuser=True, pk=None)


def add_months(day: date, months: int) -> date:
    """Return the same day `months` later (clamped to the month's last day), as Art. 12(3) counts."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))



# ------------------------------------------------------------------------------------------ manifests


@transaction.atomic
def manifest_upload(*, node: LineageNode, actor: Any, identifiers: Iterable[str]) -> SubjectManifest:
    """Replace a dataset version's subject manifest with the keyed hashes of `identifiers`; flag re-ingestions."""
    if node.kind != NodeKind.DATASET:
        raise InvalidInput("Subject manifests belong to dataset versions.")
    if not (permissions.can_handle_erasure(actor) or lineage.can_register_lineage(actor)):
        raise Forbidden("Only contributors and the compliance group upload subject manifests.")
    digests: set[str] = set()
    for identifier in identifiers:
        if identifier is None or not str(identifier).strip():
            continue
        digests.add(hashing.subject_hash(str(identifier)))
        if len(digests) > MAX_MANIFEST:
            raise InvalidInput(f"A manifest holds at most {MAX_MANIFEST:,} subjects.")
    manifest, _ = SubjectManifest.objects.select_for_update(no_key=True).get_or_create(
        node=node, defaults={"key_id": hashing.key_id(), "uploaded_by": actor})
    manifest.hashes.all().delete()
    SubjectHash.objects.bulk_create([SubjectHash(manifest=manifest, digest=d) for d in sorted(digests)],
                                    batch_size=5000)
    suppressed = set(SuppressedSubject.objects.filter(subject_hash__in=digests).values_list("subject_hash",
                                                                                             flat=True))
    manifest.entries, manifest.suppressed_hits = len(digests), len(suppressed)
    manifest.key_id, manifest.uploaded_by = hashing.key_id(), actor
    manifest.save()
    if not node.contains_personal_data and digests:
        LineageNode.objects.filter(pk=node.pk).update(contains_personal_data=True)
    for request in ErasureRequest.objects.filter(subject_hash__in=suppressed):
        request.suppressed_reingestions = sorted({*request.suppressed_reingestions, node.pk})
        request.save(update_fields=["suppressed_reingestions"])
    events.emit("subject_manifest.uploaded", actor=actor, target=manifest, data={
        "node": node.pk, "dataset": str(node), "entries": len(digests), "suppressed_subjects_found": len(suppressed)})
    return manifest


# ---------------------------------------------------------------------------------------------- impact


# What erasure follows downstream of a dataset holding the subject, in the order obligations are listed.
AFFECTED = {NodeKind.FEATURE_SET: "feature_sets", NodeKind.MODEL_VERSION: "versions",
            NodeKind.DEPLOYMENT: "deployments", NodeKind.PREDICTION_BATCH: "prediction_batches"}


def impact(subject_hash: str) -> dict[str, list[LineageNode]]:
    """Return the dataset versions holding the subject and, through lineage, what derives from them: feature sets,
    model versions, deployments and the prediction batches those versions produced (offline and served)."""
    datasets = list(LineageNode.objects.filter(subject_manifest__hashes__digest=subject_hash).distinct()
                    .order_by("name", "version", "pk"))
    dataset_ids = {n.pk for n in datasets}
    downstream: dict[int, str] = {}
    for node in datasets:
        for row in lineage_selectors.lineage_impact(actor=REGULATOR, node=node, kinds=AFFECTED):
            if row["id"] not in dataset_ids:
                downstream[row["id"]] = row["kind"]
    nodes = {n.pk: n for n in LineageNode.objects.filter(pk__in=downstream).select_related(
        "model_version", "model_version__model", "model")}
    ordered = sorted(nodes.values(), key=lambda n: (n.name, n.model_version.number if n.model_version else 0,
                                                    n.window_start is not None, n.window_start or 0, n.pk))
    found: dict[str, list[LineageNode]] = {"datasets": datasets, **{key: [] for key in AFFECTED.values()}}
    for node in ordered:
        found[AFFECTED[node.kind]].append(node)
    return found


def node_label(node: LineageNode) -> str:
    """Return a readable label for an affected node (no personal data: names of datasets, models, endpoints)."""
    if node.kind == NodeKind.MODEL_VERSION and node.model_version_id:
        return f"{node.model_version.model.name} v{node.model_version.number}"
    if node.kind == NodeKind.FEATURE_SET:
        return f"{node.name}@{node.version}" if node.version else node.name
    if node.kind == NodeKind.PREDICTION_BATCH:
        model = node.model.name if node.model_id else ""
        where = node.uri or (f"{node.window_start:%Y-%m-%d %H:%M}–{node.window_end:%H:%M} UTC"
                             if node.window_start and node.window_end else node.name)
        return f"{model} v{node.version}: {where}"[:512] if model else where[:512]
    return f"{node.name} {node.version}".strip()


# --------------------------------------------------------------------------------------------- requests


@transaction.atomic
def erasure_request_create(*, actor: Any, identifier: str, received_on: date | None = None,
                           handler: Any = None) -> ErasureRequest:
    """Record a request by the subject's keyed hash, compute its impact and open one obligation per item."""
    permissions.require_erasure_handler(actor)
    digest = hashing.subject_hash(identifier)
    duplicate = ErasureRequest.objects.filter(subject_hash=digest, state=ErasureState.OPEN).first()
    if duplicate is not None:
        raise InvalidState(f"Erasure request #{duplicate.pk} for this subject is still open.")
    received_on = received_on or timezone.localdate()
    if received_on > timezone.localdate():
        raise InvalidInput("The received date cannot be in the future.")
    request = ErasureRequest.objects.create(
        subject_hash=digest, key_id=hashing.key_id(), received_on=received_on,
        deadline=add_months(received_on, 1), handler=handler or actor, created_by=actor)
    found = impact(digest)
    ErasureObligation.objects.bulk_create([  # a served model may have produced many prediction batches
        ErasureObligation(request=request, node=node, kind=node.kind, label=node_label(node))
        for kind in ("datasets", *AFFECTED.values()) for node in found[kind]], batch_size=1000)
    suppressed_nodes = list(LineageNode.objects.filter(
        subject_manifest__hashes__digest=digest, subject_manifest__suppressed_hits__gt=0).values_list("pk", flat=True))
    if suppressed_nodes:
        request.suppressed_reingestions = suppressed_nodes
        request.save(update_fields=["suppressed_reingestions"])
    events.emit("erasure_request.created", actor=actor, target=request, data={
        "received_on": received_on.isoformat(), "deadline": request.deadline.isoformat(),
        "handler": (handler or actor).get_username(), "datasets": len(found["datasets"]),
        "model_versions": len(found["versions"]), "deployments": len(found["deployments"]),
        "feature_sets": len(found["feature_sets"]), "prediction_batches": len(found["prediction_batches"])})
    return request


def _lock(request: ErasureRequest) -> ErasureRequest:
    return ErasureRequest.objects.select_for_update(no_key=True).get(pk=request.pk)


@transaction.atomic
def erasure_request_extend(*, request: ErasureRequest, actor: Any, reason: str, notified_on: date) -> ErasureRequest:
    """Extend the deadline by two months, once, with a recorded reason and the date the subject was told."""
    permissions.require_erasure_handler(actor)
    request = _lock(request)
    if request.state != ErasureState.OPEN:
        raise InvalidState("Only open requests can be extended.")
    if request.extended:
        raise InvalidState("The deadline was already extended; Art. 12(3) allows two further months once.")
    reason = validation.text(reason or "", "Reason", 5000).strip()
    if not reason:
        raise InvalidInput("An extension needs a reason (complexity or number of requests).")
    if notified_on is None or notified_on < request.received_on or notified_on > request.deadline:
        raise InvalidInput("The subject must be told of the extension within the first month.")
    request.extended, request.extension_reason, request.extension_notified_on = True, reason[:5000], notified_on
    request.deadline = add_months(request.received_on, 3)
    request.save(update_fields=["extended", "extension_reason", "extension_notified_on", "deadline"])
    events.emit("erasure_request.extended", actor=actor, target=request, data={
        "deadline": request.deadline.isoformat(), "notified_on": notified_on.isoformat(), "reason": reason[:5000]})
    return request


def _check_resolution(obligation: ErasureObligation, request: ErasureRequest, status: str, *,
                      replacement_node: LineageNode | None, replacement_version: ModelVersion | None,
                      ground: str, reason: str) -> None:
    kind = obligation.kind
    if status == ObligationStatus.DATASET_PURGED:
        if kind != NodeKind.DATASET:
            raise InvalidInput("Only dataset obligations are resolved by purging.")
        if replacement_node is None or replacement_node.kind != NodeKind.DATASET or \
                replacement_node.pk == obligation.node_id:
            raise InvalidInput("Name the new dataset version that no longer holds the subject.")
        manifest = SubjectManifest.objects.filter(node=replacement_node).first()
        if manifest is None:
            raise InvalidInput("The new dataset version needs a subject manifest to prove the subject is gone.")
        if manifest.hashes.filter(digest=request.subject_hash).exists():
            raise InvalidState("The new dataset version still holds the subject.")
    elif status == ObligationStatus.MODEL_RETRAINED:
        if kind != NodeKind.MODEL_VERSION:
            raise InvalidInput("Only model version obligations are resolved by retraining.")
        old = obligation.node.model_version if obligation.node else None
        if replacement_version is None or old is None or replacement_version.model_id != old.model_id \
                or replacement_version.number <= old.number:
            raise InvalidInput("Name a newer version of the same model as the retrained one.")
        if replacement_version.pk in {o.node.model_version_id for o in request.obligations.select_related("node")
                                      if o.node and o.kind == NodeKind.MODEL_VERSION}:
            raise InvalidState("The retrained version is itself affected by this request.")
    elif status == ObligationStatus.MODEL_DEPRECATED:
        if kind != NodeKind.MODEL_VERSION:
            raise InvalidInput("Only model version obligations are resolved by deprecation.")
        if not (obligation.node and obligation.node.model_version and obligation.node.model_version.deprecated):
            raise InvalidState("Deprecate the version in the registry first.")
    elif status == ObligationStatus.FEATURES_RECOMPUTED:
        if kind != NodeKind.FEATURE_SET:
            raise InvalidInput("Only feature set obligations are resolved by recomputing the feature set.")
        old_node = obligation.node
        if replacement_node is None or replacement_node.kind != NodeKind.FEATURE_SET or old_node is None \
                or replacement_node.pk == old_node.pk or replacement_node.name != old_node.name:
            raise InvalidInput("Name the new version of the same feature set (its lineage node id), recomputed "
                               "without the subject.")
        held = request.obligations.filter(kind=NodeKind.DATASET, node__isnull=False).values_list("node_id", flat=True)
        if any(lineage_selectors.reaches(start=pk, goal=replacement_node.pk) for pk in held):
            raise InvalidState("The new feature set version is itself affected by this request: it still derives "
                               "from data holding the subject.")
    elif status == ObligationStatus.OUTPUTS_DELETED:
        if kind not in (NodeKind.PREDICTION_BATCH, NodeKind.FEATURE_SET):
            raise InvalidInput("Only prediction batches and feature sets have outputs to delete or mark.")
        if not reason:
            raise InvalidInput("Say what was done: the outputs deleted (where), or the rows derived from the "
                               "subject marked.")
    elif status == ObligationStatus.EXEMPT:
        if ground not in ExemptionGround.values or not reason:
            raise InvalidInput("An exemption needs an Art. 17(3) ground and a reason.")
    elif status == ObligationStatus.NOT_APPLICABLE:
        if not reason:
            raise InvalidInput("Say why the obligation does not apply.")
    else:
        raise InvalidInput(f"Unknown resolution {status!r}.")


@transaction.atomic
def obligation_resolve(*, obligation: ErasureObligation, actor: Any, status: str, reason: str = "",
                       replacement_node: LineageNode | None = None, replacement_version: ModelVersion | None = None,
                       ground: str = "") -> ErasureObligation:
    """Record how one affected item was dealt with; the evidence each resolution needs is checked."""
    permissions.require_erasure_handler(actor)
    request = _lock(obligation.request)
    if request.state != ErasureState.OPEN:
        raise InvalidState("The request is closed.")
    obligation = ErasureObligation.objects.select_related("node", "node__model_version").get(pk=obligation.pk)
    reason = validation.text(reason or "", "Reason", 5000).strip()
    _check_resolution(obligation, request, status, replacement_node=replacement_node,
                      replacement_version=replacement_version, ground=ground, reason=reason)
    obligation.status, obligation.reason = status, reason
    obligation.replacement_node = replacement_node if status in (ObligationStatus.DATASET_PURGED,
                                                                 ObligationStatus.FEATURES_RECOMPUTED) else None
    obligation.replacement_version = replacement_version if status == ObligationStatus.MODEL_RETRAINED else None
    obligation.exemption_ground = ground if status == ObligationStatus.EXEMPT else ""
    obligation.resolved_by, obligation.resolved_at = actor, timezone.now()
    obligation.save()
    events.emit("erasure_obligation.resolved", actor=actor, target=request, data={
        "obligation": obligation.pk, "item": obligation.label, "kind": obligation.kind, "status": status,
        "ground": obligation.exemption_ground, "reason": reason,
        "replacement_node": obligation.replacement_node_id, "replacement_version": obligation.replacement_version_id})
    return obligation


@transaction.atomic
def obligation_purge_files(*, obligation: ErasureObligation, actor: Any) -> ErasureObligation:
    """Delete the stored files of an affected dataset now (no grace period) and keep what was deleted, and what
    could not be because something else still refers to it, as evidence on the obligation and its certificate."""
    permissions.require_erasure_handler(actor)
    request = _lock(obligation.request)
    if request.state != ErasureState.OPEN:
        raise InvalidState("The request is closed.")
    obligation = ErasureObligation.objects.select_related("node").get(pk=obligation.pk)
    if obligation.kind != NodeKind.DATASET or obligation.node is None:
        raise InvalidInput("Only an affected dataset's stored files can be purged.")
    evidence = gc.dataset_files_purge(node=obligation.node, actor=actor, reason=f"erasure request #{request.pk}")
    obligation.files_purged, obligation.files_purged_at = evidence, timezone.now()
    obligation.save(update_fields=["files_purged", "files_purged_at"])
    events.emit("erasure_obligation.files_purged", actor=actor, target=request, data={
        "obligation": obligation.pk, "item": obligation.label, "files": len(evidence["files"]),
        "blobs_deleted": evidence["blobs_deleted"], "bytes_freed": evidence["bytes_freed"],
        "blobs_kept": evidence["blobs_kept"]})
    return obligation


@transaction.atomic
def erasure_request_close(*, request: ErasureRequest, actor: Any) -> ErasureRequest:
    """Close a request once every obligation is resolved; the subject's hash joins the suppression list."""
    permissions.require_erasure_handler(actor)
    request = _lock(request)
    if request.state != ErasureState.OPEN:
        raise InvalidState("The request is already closed.")
    pending = list(request.obligations.filter(status=ObligationStatus.PENDING).values_list("label", flat=True))
    if pending:
        raise InvalidState(f"{len(pending)} obligation(s) are unresolved: {', '.join(pending[:10])}.")
    request.state, request.closed_at = ErasureState.CLOSED, timezone.now()
    request.save(update_fields=["state", "closed_at"])
    SuppressedSubject.objects.get_or_create(subject_hash=request.subject_hash, defaults={"request": request})
    events.emit("erasure_request.closed", actor=actor, target=request, data={
        "obligations": request.obligations.count(), "on_time": timezone.localdate() <= request.deadline})
    return request
