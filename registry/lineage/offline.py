"""Offline scoring's prediction batches: a batch job that scored a file or table with a version registers its
output (URI, row count, optional window, input/output digests) as a prediction-batch node produced by the version,
the same shape the gateway's batches have, so the lineage graph, the trace and erasure treat both alike."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from registry import events, permissions, validation
from registry.errors import InvalidInput, InvalidState
from registry.lineage.models import EdgeKind, LineageNode, NodeKind
from registry.lineage.openlineage import data_uri
from registry.lineage.services import (
    Registered,
    edge_insert,
    graph_lock,
    identity_key,
    version_node_ensure,
)
from registry.locking import model_lock
from registry.models import ModelVersion

DIGEST = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_\-+/=.]{0,127}")
OFFLINE = "offline"


def _digest(value: Any, field: str) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not DIGEST.fullmatch(value):
        raise InvalidInput(f"{field} must be a digest such as sha256:<hex>: at most 128 letters, digits and "
                           "':_-+/=.'.")
    return value


def _offline_key(version: ModelVersion, uri: str) -> tuple[str, str]:
    """The batch's identity: its output URI, per version (the same output registered again is the same node)."""
    external_id = f"{OFFLINE}:v{version.number}:{hashlib.sha256(uri.encode()).hexdigest()[:40]}"
    return external_id, identity_key(NodeKind.PREDICTION_BATCH, {"model": version.model_id, "external_id": external_id})


@transaction.atomic
def prediction_batch_register(*, actor: Any, version: ModelVersion, uri: str, row_count: Any,
                              window_start: datetime | None = None, window_end: datetime | None = None,
                              input_digest: str = "", output_digest: str = "") -> Registered:
    """Record that `version` scored `row_count` rows offline into `uri`; registering the same output again returns
    the node (a different count or digest for the same output is refused: a new output has a new URI)."""
    errors: dict[str, str] = {}
    checks = {
        "uri": lambda: data_uri(uri, "uri") or _missing("uri", "the URI the batch's predictions were written to"),
        "row_count": lambda: _count(row_count),
        "input_digest": lambda: _digest(input_digest, "input_digest"),
        "output_digest": lambda: _digest(output_digest, "output_digest"),
    }
    clean: dict[str, Any] = {}
    for name, check in checks.items():
        try:
            clean[name] = check()
        except InvalidInput as error:
            errors[name] = error.message
    if (window_start is None) != (window_end is None):
        errors["window"] = "Give both window_start and window_end, or neither."
    elif window_start is not None and window_end is not None and window_end < window_start:
        errors["window"] = "window_end must not be before window_start."
    if errors:
        raise InvalidInput(" ".join(errors.values()), details={"fields": errors})
    model = model_lock(version.model_id)
    permissions.require(permissions.can_contribute, actor, model, action="register prediction batches")
    graph_lock()
    version_node, _ = version_node_ensure(version)
    external_id, key = _offline_key(version, clean["uri"])
    properties = {"source": OFFLINE, "input_digest": clean["input_digest"], "output_digest": clean["output_digest"]}
    existing = LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH, key=key).first()
    if existing is not None:
        same = (existing.row_count == clean["row_count"] and existing.properties == properties
                and existing.window_start == window_start and existing.window_end == window_end)
        if not same:
            raise InvalidState(f"The batch written to {clean['uri'][:200]} is already registered for version "
                               f"{version.number} with other counts, digests or window; a new output has a new URI.")
        return Registered(existing, False)
    tail = clean["uri"].rstrip("/").rsplit("/", 1)[-1] or clean["uri"]
    node = LineageNode.objects.create(
        kind=NodeKind.PREDICTION_BATCH, key=key, model=model, name=f"{OFFLINE} {tail}"[:500],
        version=str(version.number), uri=clean["uri"], digest=clean["output_digest"], external_id=external_id,
        row_count=clean["row_count"], window_start=window_start, window_end=window_end, properties=properties,
        owner=actor)
    edge_insert(upstream=version_node, downstream=node, kind=EdgeKind.PRODUCED, role="", actor=actor)
    events.emit("prediction_batch.registered", actor=actor, target=version, data={
        "model": model.name, "version": version.number, "node": node.pk, "uri": node.uri,
        "row_count": node.row_count, "source": OFFLINE})
    return Registered(node, True)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("row_count is required: the number of rows scored, an integer from 0 up.")
    return validation.integer(value, "row_count", low=0)


def _missing(field: str, what: str) -> str:
    raise InvalidInput(f"{field} is required: {what}.")


def version_prediction_batches(*, version: ModelVersion) -> QuerySet[LineageNode]:
    """Return the prediction batches a visible version produced (offline and from the gateway), newest first."""
    return (LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH, upstream_edges__kind=EdgeKind.PRODUCED,
                                       upstream_edges__upstream__model_version=version)
            .select_related("model").order_by("-created_at", "-pk"))
