"""Hand-off to Kubernetes serving: an endpoint's live routing as a KServe InferenceService (serving.kserve.io/v1beta1).

The predictor serves the ONNX file the gateway serves (the route captured when the rollout started, from a version
whose files scanned clean and whose signed tree verified), in KServe's ONNX runtime. A canary in progress exports
the candidate with `canaryTrafficPercent` set to its current weight: KServe sends that share to the latest revision
and the rest to the revision rolled out before it, so the stable export must have been applied first. Preview
(blue-green) and shadow candidates stay in Stratum's gateway; an A/B test has no KServe equivalent and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from deployments.models import Endpoint
from registry.artifacts.storage import blob_bucket_uri
from registry.errors import InvalidState
from registry.models import ModelVersion
from registry.pipeline.selectors import version_signature_status

API_VERSION = "serving.kserve.io/v1beta1"
ANNOTATION = "stratum.dev"
DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def kserve_name(name: str) -> str:
    """An endpoint name as a Kubernetes object name (RFC 1123 label: lower case, digits and '-', at most 63)."""
    label = DNS_LABEL.sub("-", name.lower()).strip("-")[:63].strip("-")
    return label or "endpoint"


def endpoint_inference_service(*, endpoint: Endpoint, artifact_url: Callable[[ModelVersion, str], str]
                               ) -> dict[str, Any]:
    """Return the KServe InferenceService serving what `endpoint` serves live; `artifact_url(version, path)` gives
    the https URL of a version's file on this Stratum (used when the store is not an S3 bucket)."""
    routing = endpoint.routing or {}
    routes = routing.get("routes") or []
    if not routes:
        raise InvalidState(f"Endpoint {endpoint.name!r} serves nothing yet; deploy a version first.")
    if routing.get("ab"):
        raise InvalidState(f"Endpoint {endpoint.name!r} runs an A/B test, which KServe has no equivalent for; "
                           "finish or abort it before handing the endpoint to KServe.")
    canary = next((r for r in routes if r.get("role") == "canary"), None)
    stable = next((r for r in routes if r.get("role") == "stable"), None)
    target = canary or stable
    if target is None:
        raise InvalidState(f"Endpoint {endpoint.name!r} has no stable route to export.")
    version = ModelVersion.objects.select_related("model").get(pk=target["version_id"])
    storage_uri = blob_bucket_uri(target["sha256"]) or artifact_url(version, target["path"])
    signature = version_signature_status(version=version)
    predictor: dict[str, Any] = {
        # KServe's own name for the predictor's container (what it uses when none is given).
        "model": {"name": "kserve-container", "modelFormat": {"name": "onnx"}, "storageUri": storage_uri},
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = int(canary["weight"])
    annotations = {
        f"{ANNOTATION}/endpoint": endpoint.name,
        f"{ANNOTATION}/model": version.model.name,
        f"{ANNOTATION}/version": str(version.number),
        f"{ANNOTATION}/artifact-path": target["path"],
        f"{ANNOTATION}/artifact-sha256": target["sha256"],
        f"{ANNOTATION}/signature": signature["status"],
        f"{ANNOTATION}/routing-generation": str(routing.get("generation", endpoint.generation)),
    }
    if signature.get("signature"):
        annotations[f"{ANNOTATION}/signature-bundle-sha256"] = signature["signature"]["bundle_sha256"]
    if canary is not None and stable is not None:
        annotations[f"{ANNOTATION}/stable-version"] = str(stable["number"])
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": kserve_name(endpoint.name),
            "labels": {"app.kubernetes.io/managed-by": "stratum", f"{ANNOTATION}/environment":
                       kserve_name(endpoint.environment.name)},
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }
