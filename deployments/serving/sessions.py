"""ONNX Runtime sessions, one per process and model content (SHA-256), loaded on first use and checked against
their hash; running them."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployments.serving.errors import GatewayError


@dataclass
class LoadedModel:
    """An ONNX Runtime session with what the gateway needs to feed it."""

    session: Any
    input_name: str
    n_features: int | None
    output_names: list[str]


_sessions: dict[str, LoadedModel] = {}
_sessions_lock = threading.Lock()


def session_for(sha256: str) -> LoadedModel:
    """Return the cached session for an ONNX blob, loading it on first use (one per process and content)."""
    loaded = _sessions.get(sha256)
    if loaded is not None:
        return loaded
    with _sessions_lock:
        loaded = _sessions.get(sha256)
        if loaded is None:
            loaded = _load(sha256)
            _sessions[sha256] = loaded
    return loaded


def _load(sha256: str) -> LoadedModel:
    import onnxruntime as ort

    from registry.artifacts.storage import blob_open
    from registry.errors import Quarantined
    from registry.models import Blob
    from registry.pipeline.selectors import ensure_digest_servable

    try:
        ensure_digest_servable(sha256, path=f"model file {sha256[:12]}…")  # before a byte is read
    except Quarantined as exc:
        raise GatewayError(409, "QUARANTINED", exc.message) from None
    blob = Blob.objects.get(sha256=sha256)
    with blob_open(blob) as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != sha256:  # the stored bytes changed since they were scanned and signed
        raise GatewayError(502, "MODEL_INTEGRITY", f"The stored model file {sha256[:12]}… no longer matches its hash; "
                                                   "it will not be served.")
    refuse_external_data(data, sha256)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures are recorded per request; ORT need not also print each one
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = first.shape
    n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
    return LoadedModel(session, first.name, n_features, [o.name for o in session.get_outputs()])


def refuse_external_data(data: bytes, sha256: str) -> None:
    """Refuse a model whose tensors live in other files: loading it would read outside the artifact store."""
    from registry.pipeline.selectors import external_data_refs

    try:
        refs = external_data_refs(data)
    except ValueError:
        return  # not parseable as ONNX: ONNX Runtime reports that itself
    if refs:
        raise GatewayError(422, "MODEL_EXTERNAL_DATA", f"The model file {sha256[:12]}… stores tensors in external "
                                                       f"files ({', '.join(sorted({loc for _, loc in refs}))[:200]}); "
                                                       "it will not be served.")


def forget_quarantined(routing: dict[str, Any]) -> None:
    """Drop this process's sessions of any content the routing serves that is quarantined now (a rescan, a revoked
    release): the next request loads it again, and that load refuses it."""
    from registry.pipeline.selectors import quarantined_digests

    for sha in quarantined_digests(_routing_hashes(routing)):
        with _sessions_lock:
            _sessions.pop(sha, None)


def warm(routing: dict[str, Any]) -> None:
    """Load every session a routing snapshot may use (live routes, preview, shadow and the warm standby)."""
    for sha in _routing_hashes(routing):
        session_for(sha)


def _routing_hashes(routing: dict[str, Any]) -> list[str]:
    hashes = [r["sha256"] for r in routing.get("routes") or []]
    hashes += [routing[k]["sha256"] for k in ("preview", "shadow") if routing.get(k)]
    return hashes + list(routing.get("warm") or [])


def run_model(loaded: LoadedModel, x: np.ndarray) -> tuple[list[Any], list[list[float]] | None]:
    """Run a session; return the predictions and, for classifiers, the class probabilities."""
    outputs = loaded.session.run(None, {loaded.input_name: x})
    predictions = np.asarray(outputs[0])
    predictions = predictions.reshape(len(x), -1)[:, 0] if predictions.ndim > 1 else predictions
    probabilities = None
    if len(outputs) > 1 and np.asarray(outputs[1]).ndim == 2:
        probabilities = np.asarray(outputs[1]).tolist()
    return predictions.tolist(), probabilities


def smoke_check(route: dict[str, Any]) -> list[Any]:
    """Run a version on one row synthesised from its signature; return its answer or raise."""
    loaded = session_for(route["sha256"])
    width = len(route.get("inputs") or []) or loaded.n_features or 1
    x = np.zeros((1, width), dtype=np.float32)
    outputs = loaded.session.run(None, {loaded.input_name: x})
    return np.asarray(outputs[0]).ravel().tolist()


def forget_all() -> None:
    """Drop every cached session (tests)."""
    _sessions.clear()
