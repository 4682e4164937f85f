"""Serving one request from end to end (limit, route, check the input, run the model, record it, mirror it), and
this process's gateway as a whole: drain what is buffered, or forget everything cached."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from deployments import routing as routing_rules
from deployments.serving import access, endpoints, sessions
from deployments.serving.access import CachedToken, authorize, rate_limit
from deployments.serving.endpoints import endpoint_state
from deployments.serving.errors import GatewayError
from deployments.serving.inputs import parse_inputs
from deployments.serving.recording import recorder
from deployments.serving.sessions import run_model, session_for
from deployments.serving.shadow import mirror


def predict(name: str, payload: Any, *, token: CachedToken, headers: Any,
            request_id: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Serve one request of an authenticated caller: limit, route, check the input, run the model, record it."""
    started = time.perf_counter()
    rate_limit(token)
    state = endpoint_state(name)
    authorize(token, state, name)
    routing = state.routing
    if not routing.get("routes"):
        raise GatewayError(409, "NOT_DEPLOYED", f"Endpoint {name!r} serves no version yet; deploy one first.")
    preview = str(headers.get(routing_rules.PREVIEW_HEADER, "")).lower() in ("1", "true", "yes")
    key = None
    ab = routing.get("ab")
    if ab and not preview:
        key, payload = _ab_key(ab, headers, payload)
    route = routing_rules.choose_route(routing, preview=preview, key=key)
    loaded = session_for(route["sha256"])
    x = parse_inputs(payload, route, loaded)
    request_id = request_id or uuid.uuid4().hex  # the audit middleware's id (the caller's X-Request-ID if sent)
    deployment_id = routing.get("deployment_id")
    try:
        predictions, probabilities = run_model(loaded, x)
    except Exception as error:
        recorder.record(state.endpoint_id, deployment_id, route["version_id"], "live",
                        (time.perf_counter() - started) * 1000, True, len(x), None, request_id, x, str(error)[:300],
                        route_role=route.get("role", ""), generation=routing.get("generation", 0))
        raise GatewayError(502, "MODEL_ERROR", f"Version {route['number']} failed on this input: "
                                               f"{str(error)[:300]}") from error
    elapsed_ms = (time.perf_counter() - started) * 1000
    recorder.record(state.endpoint_id, deployment_id, route["version_id"], "live", elapsed_ms, False, len(x),
                    predictions, request_id, x, None, route_role=route.get("role", ""),
                    generation=routing.get("generation", 0))
    shadow = routing.get("shadow")
    if shadow and not preview and random.random() * 100 < shadow["percent"]:
        mirror.submit(state.endpoint_id, deployment_id, shadow, x, predictions, request_id)
    body: dict[str, Any] = {"request_id": request_id, "endpoint": name, "model": state.model_name,
                            "version": route["number"], "predictions": predictions}
    if probabilities is not None:
        body["probabilities"] = probabilities
    if route.get("labels"):
        body["labels"] = route["labels"]
    return body, {"X-Request-Id": request_id, "X-Stratum-Version": str(route["number"])}


def _ab_key(ab: dict[str, Any], headers: Any, payload: Any) -> tuple[str, Any]:
    """Return the A/B caller key (from the header, else the body field, which is then removed) and the payload."""
    key = headers.get(ab["header"]) if ab.get("header") else None
    if key is None and ab.get("field") and isinstance(payload, dict):
        key = payload.get(ab["field"])
        payload = {k: v for k, v in payload.items() if k != ab["field"]}
    if not isinstance(key, str) or not key:
        where = " or ".join(filter(None, [f"header {ab['header']}" if ab.get("header") else "",
                                          f"field {ab['field']!r}" if ab.get("field") else ""]))
        raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                           f"This endpoint runs an A/B test: identify the caller with {where} so the same "
                           "caller always gets the same arm.")
    return key, payload


def drain() -> None:
    """Finish mirrored requests and write every buffered statistic now (tests, shutdown, the benchmark)."""
    mirror.wait()
    recorder.flush()


def reset() -> None:
    """Forget cached sessions, routing and tokens and buffered statistics (tests)."""
    sessions.forget_all()
    endpoints.forget_all()
    access.forget_all()
    recorder.discard()
