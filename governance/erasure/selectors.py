"""Erasure reads shared by pages, the API and the certificate: requests with counts, and the impact graph."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from governance import permissions
from governance.models import ErasureObligation, ErasureRequest, ErasureState, ObligationStatus
from registry.errors import NotFound
from registry.lineage import selectors as lineage
from registry.lineage.models import LineageEdge, LineageNode


def erasure_list(*, actor: Any, state: str | None = None) -> QuerySet[ErasureRequest]:
    """Return requests by deadline with obligation counts (handlers only)."""
    permissions.require_erasure_handler(actor)
    qs = ErasureRequest.objects.select_related("handler").annotate(
        obligation_count=Count("obligations"),
        pending_count=Count("obligations", filter=Q(obligations__status=ObligationStatus.PENDING)))
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("state", "deadline", "pk")


def erasure_get(*, actor: Any, pk: int | str) -> ErasureRequest:
    """Return one request (handlers only) or raise NotFound."""
    permissions.require_erasure_handler(actor)
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise NotFound(f"No erasure request {pk!r}.")
    request = ErasureRequest.objects.select_related("handler", "created_by").filter(pk=number).first()
    if request is None:
        raise NotFound(f"No erasure request #{number}.")
    return request


# What the officer must do about each kind of affected item (shown beside it, in the API and on the certificate).
DUTIES = {
    "dataset": "Purge the subject: register a new dataset version without them (its manifest proves it) and delete "
               "the stored files of this one.",
    "feature_set": "Recompute the feature set without the subject and register the new version (name it here), or "
                   "delete its stored features or mark the rows derived from the subject.",
    "model_version": "Retrain without the subject (name the new version) or deprecate this version.",
    "deployment": "Replace the served version with one trained without the subject, or record why not.",
    "prediction_batch": "Delete the batch's outputs, or mark the predictions derived from the subject's data; say "
                        "which and where.",
}


def obligation_duty(kind: str) -> str:
    """Return what the officer must do about an affected item of `kind`."""
    return DUTIES.get(kind, "Record how the subject's data was dealt with.")


def obligations(*, request: ErasureRequest) -> list[ErasureObligation]:
    """Return a request's obligations with what their rows show (each with `links`: where to act on it, and `duty`:
    what must be done)."""
    rows = list(request.obligations.select_related(
        "node", "node__model_version", "node__model_version__model", "node__model", "replacement_node",
        "replacement_version", "replacement_version__model", "resolved_by").order_by("kind", "label", "pk"))
    for row in rows:
        row.links = obligation_links(row)
        row.duty = obligation_duty(row.kind)
    return rows


def obligation_links(obligation: ErasureObligation) -> dict[str, Any]:
    """Return the pages an obligation's item lives on: its lineage node, and by kind the subject manifest, the
    version and its model card, or the endpoint on the Deployments page (None for an external deployment that
    only the lineage graph records)."""
    from django.urls import reverse

    node = obligation.node
    links: dict[str, Any] = {"node": reverse("registry:lineage-node", args=[node.pk]) if node else None}
    if node is None:
        return links
    if obligation.kind == "dataset":
        links["manifest"] = reverse("governance:subject-manifest", args=[node.pk])
    elif obligation.kind == "model_version" and node.model_version is not None:
        version = node.model_version
        links["version"] = reverse("registry:version-detail", args=[version.model.name, version.number])
        links["card"] = reverse("governance:card", args=[version.model.name, version.number])
    elif obligation.kind == "prediction_batch" and node.model is not None and node.version.isdigit():
        links["version"] = reverse("registry:version-detail", args=[node.model.name, int(node.version)])
    elif obligation.kind == "deployment":
        # Stratum's own rollouts are recorded as "<endpoint>#<deployment id>"; anything else came from outside.
        endpoint, sep, number = node.name.partition("#")
        links["endpoint_name"] = endpoint if sep and number.isdigit() else None
        links["title"] = (f"Deployment #{number} of {endpoint}" + (f" (version {node.version})" if node.version else "")
                          if sep and number.isdigit() else obligation.label)
        links["endpoint"] = (reverse("deployments:dashboard", args=[endpoint])
                             if sep and number.isdigit() else None)
    return links


def days_left(request: ErasureRequest, today: date | None = None) -> int:
    """Return the days until the deadline (negative when overdue)."""
    return (request.deadline - (today or timezone.localdate())).days


def is_overdue(request: ErasureRequest, today: date | None = None) -> bool:
    """True when an open request has passed its deadline."""
    return request.state == ErasureState.OPEN and days_left(request, today) < 0


def impact_graph(*, request: ErasureRequest) -> lineage.Graph | None:
    """Return everything downstream of the affected datasets as a lineage Graph (for the lineage figure).

    Handlers see the whole impact whoever owns the models: the obligations already name every affected item.
    """
    from governance.erasure.services import REGULATOR

    datasets = [o.node for o in request.obligations.select_related("node") if o.node and o.kind == "dataset"]
    if not datasets:
        return None
    depths: dict[int, int] = {}
    for dataset in datasets:
        walked = lineage.lineage_walk(actor=REGULATOR, node=dataset, direction="downstream", depth=lineage.MAX_DEPTH)
        for pk, depth in walked.depths.items():
            depths[pk] = min(depth, depths.get(pk, depth))
    nodes = list(LineageNode.objects.filter(pk__in=depths).select_related(
        "model", "model_version", "model_version__model"))
    edges = list(LineageEdge.objects.filter(upstream_id__in=depths, downstream_id__in=depths).order_by("pk"))
    return lineage.Graph(focus=datasets[0], nodes=sorted(nodes, key=lambda n: (depths[n.pk], n.kind, n.name, n.pk)),
                         depths=depths, edges=edges, direction="downstream", depth=lineage.MAX_DEPTH,
                         truncated=False)
