"""The serving gateway's engine: per-process ONNX Runtime sessions and routing, input checks, buffered statistics.

Nothing here queries the database on the request path once warm: routing snapshots are cached per process and
re-checked against the endpoint's generation at most every STRATUM_ROUTING_REFRESH_SECONDS; ONNX sessions are
cached by content hash; request statistics are aggregated in memory and written in batches by a background thread.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import math
import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.conf import settings

from deployments import routing as routing_rules
from deployments import stats

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """A request the gateway refuses, with the HTTP status and error code the caller sees."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------------------------------- sessions


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
    from registry.models import Blob

    blob = Blob.objects.get(sha256=sha256)
    with blob_open(blob) as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != sha256:  # the stored bytes changed since they were scanned and signed
        raise GatewayError(502, "MODEL_INTEGRITY", f"The stored model file {sha256[:12]}… no longer matches its hash; "
                                                   "it will not be served.")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures are recorded per request; ORT need not also print each one
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = first.shape
    n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
    return LoadedModel(session, first.name, n_features, [o.name for o in session.get_outputs()])


def warm(routing: dict[str, Any]) -> None:
    """Load every session a routing snapshot may use (live routes, preview, shadow and the warm standby)."""
    for sha in _routing_hashes(routing):
        session_for(sha)


def _routing_hashes(routing: dict[str, Any]) -> list[str]:
    hashes = [r["sha256"] for r in routing.get("routes") or []]
    hashes += [routing[k]["sha256"] for k in ("preview", "shadow") if routing.get(k)]
    return hashes + list(routing.get("warm") or [])


def smoke_check(route: dict[str, Any]) -> list[Any]:
    """Run a version on one row synthesised from its signature; return its answer or raise."""
    loaded = session_for(route["sha256"])
    width = len(route.get("inputs") or []) or loaded.n_features or 1
    x = np.zeros((1, width), dtype=np.float32)
    outputs = loaded.session.run(None, {loaded.input_name: x})
    return np.asarray(outputs[0]).ravel().tolist()


# ----------------------------------------------------------------------------------------------- routing


@dataclass
class EndpointState:
    """A process's view of one endpoint: its routing snapshot and the identity the gateway checks against."""

    endpoint_id: int
    model_id: int
    model_owner_id: int | None
    model_name: str
    generation: int
    routing: dict[str, Any]
    checked: float


_endpoints: dict[str, EndpointState] = {}


def endpoint_state(name: str) -> EndpointState:
    """Return the endpoint's routing, re-checking its generation at most every STRATUM_ROUTING_REFRESH_SECONDS."""
    from deployments.models import Endpoint

    state = _endpoints.get(name)
    now = time.monotonic()
    if state is not None and now - state.checked < settings.STRATUM_ROUTING_REFRESH_SECONDS:
        return state
    if state is not None:
        generation = Endpoint.objects.filter(pk=state.endpoint_id).values_list("generation", flat=True).first()
        if generation == state.generation:
            state.checked = now
            return state
    row = (Endpoint.objects.filter(name=name).select_related("model")
           .values_list("pk", "model_id", "model__owner_id", "model__name", "generation", "routing").first())
    if row is None:
        _endpoints.pop(name, None)
        raise GatewayError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint {name!r} not found.")
    pk, model_id, owner_id, model_name, generation, routing = row
    warm(routing or {})
    state = EndpointState(pk, model_id, owner_id, model_name, generation, routing or {}, now)
    _endpoints[name] = state
    return state


def routing_changed(name: str) -> None:
    """Forget this process's routing of an endpoint and warm the new one (called after a routing change commits)."""
    _endpoints.pop(name, None)
    try:
        endpoint_state(name)
    except Exception:
        log.exception("warming endpoint %s failed", name)


# ------------------------------------------------------------------------------------- auth and rate limits


@dataclass
class CachedToken:
    """A checked serving token: its user, public prefix, expiry in this cache, and per-model access decisions."""

    user: Any
    prefix: str
    until: float
    allowed: dict[int, bool] = field(default_factory=dict)


_tokens: dict[str, CachedToken] = {}


def authenticate(header: str) -> CachedToken:
    """Return the serving token behind an Authorization header (cached briefly), or raise 401."""
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise GatewayError(401, "UNAUTHENTICATED", "Send a serving token: Authorization: Bearer stm_… "
                                                    "(create one with the serve scope on the tokens page).")
    raw = raw.strip()
    digest = hashlib.sha256(raw.encode()).hexdigest()
    now = time.monotonic()
    cached = _tokens.get(digest)
    if cached is not None and cached.until > now:
        return cached
    from registry.authentication import user_for_token

    user = user_for_token(raw, scope="serve")
    if user is None:
        _tokens.pop(digest, None)
        raise GatewayError(401, "UNAUTHENTICATED", "Invalid, expired or revoked token, or a token without the "
                                                    "serve scope.")
    if len(_tokens) > 10_000:
        _tokens.clear()
    cached = CachedToken(user, user.stratum_token.prefix, now + settings.STRATUM_TOKEN_CACHE_SECONDS)
    _tokens[digest] = cached
    return cached


def authorize(token: CachedToken, state: EndpointState, name: str) -> None:
    """Refuse callers with no role on the endpoint's model (as if the endpoint did not exist)."""
    allowed = token.allowed.get(state.model_id)
    if allowed is None:
        from registry import permissions
        from registry.models import RegisteredModel

        allowed = permissions.can_view(token.user, RegisteredModel(pk=state.model_id, owner_id=state.model_owner_id))
        token.allowed[state.model_id] = allowed
    if not allowed:
        raise GatewayError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint {name!r} not found.")


def rate_limit(token: CachedToken) -> None:
    """Allow STRATUM_SERVING_RATE_PER_MINUTE requests per token per minute (shared through the cache)."""
    from django.core.cache import cache

    limit = settings.STRATUM_SERVING_RATE_PER_MINUTE
    if limit <= 0:
        return
    key = f"serve-rate:{token.prefix}:{int(time.time() // 60)}"
    if cache.add(key, 1, timeout=90):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=90)
        return
    if count > limit:
        raise GatewayError(429, "RATE_LIMITED", f"More than {limit} requests this minute for token {token.prefix}; "
                                                "slow down and retry after the minute turns.")


# ------------------------------------------------------------------------------------------------- inputs


def _table(payload: Any, names: list[str]) -> list[list[Any]]:
    """Return the request's rows as lists in signature order, from any of the accepted layouts."""
    if not isinstance(payload, dict):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "The body must be a JSON object such as "
                                                           '{"rows": [[5.1, 3.5, 1.4, 0.2]]}.')
    layouts = [k for k in ("rows", "instances", "inputs", "dataframe_split", "dataframe_records", "data")
               if k in payload]
    if len(layouts) != 1:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", 'Send exactly one of "rows" (a list of rows), "inputs" '
                                                           '(columns: {"name": [values]}), "dataframe_split" or '
                                                           '"dataframe_records".')
    layout = layouts[0]
    value = payload[layout]
    if layout == "dataframe_split" or (layout == "data" and "columns" in payload):
        split = value if layout == "dataframe_split" else payload
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", 'dataframe_split needs "columns" and "data".')
        columns = split.get("columns")
        rows = split["data"]
        if columns is not None:
            if not isinstance(columns, list) or any(isinstance(r, list) and len(r) != len(columns) for r in rows):
                raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                                   "dataframe_split: every row of data needs one value per column.")
            rows = [_row_from_mapping(dict(zip(columns, r, strict=True)) if isinstance(r, list) else r, names, i)
                    for i, r in enumerate(rows)] if names else rows
        return rows
    if layout == "inputs" and isinstance(value, dict):
        if names and set(value) != set(names):
            _name_mismatch(set(value), names, "inputs")
        cols = [value[n] for n in names] if names else list(value.values())
        if not all(isinstance(c, list) for c in cols) or len({len(c) for c in cols}) > 1:
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Every input column must be a list of the same length.")
        return [list(r) for r in zip(*cols, strict=True)] if cols else []
    if not isinstance(value, list):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", f'"{layout}" must be a list of rows.')
    if value and isinstance(value[0], dict):
        return [_row_from_mapping(r, names, i) for i, r in enumerate(value)]
    return value


def _row_from_mapping(row: Any, names: list[str], index: int) -> list[Any]:
    if not isinstance(row, dict):
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", f"Row {index} must be an object keyed by feature name.")
    if not names:
        return list(row.values())
    if set(row) != set(names):
        _name_mismatch(set(row), names, f"row {index}")
    return [row[n] for n in names]


def _name_mismatch(got: set[str], names: list[str], where: str) -> None:
    missing, extra = [n for n in names if n not in got], sorted(got - set(names))
    parts = [f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else ""]
    raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                       f"Features of {where} do not match the signature ({'; '.join(p for p in parts if p)}); "
                       f"expected {', '.join(names)}.")


def parse_inputs(payload: Any, route: dict[str, Any], loaded: LoadedModel) -> np.ndarray:
    """Return the request as a float32 matrix after checking shape and types against the version's signature."""
    names = [c["name"] for c in route.get("inputs") or []]
    rows = _table(payload, names)
    if not rows:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Send at least one row.")
    limit = settings.STRATUM_SERVING_MAX_ROWS
    if len(rows) > limit:
        raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"{len(rows)} rows is more than the {limit} a request may carry; "
                                                     "split the batch.")
    width = len(names) or loaded.n_features
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise GatewayError(400, "INVALID_PARAMETER_VALUE", f"Row {i} must be a list of numbers.")
        if width is not None and len(row) != width:
            raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                               f"Row {i} has {len(row)} feature(s); version {route['number']} takes {width}"
                               + (f" ({', '.join(names)})." if names else "."))
        for j, value in enumerate(row):
            kind = type(value)
            if kind is not float and kind is not int:
                label = names[j] if names and j < len(names) else f"column {j}"
                raise GatewayError(400, "INVALID_PARAMETER_VALUE",
                                   f"Row {i}, {label}: expected a number, got {_json_type(value)}.")
    x = np.asarray(rows, dtype=np.float32)
    if x.ndim != 2:
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Rows must all have the same number of features.")
    if not np.isfinite(x).all():
        raise GatewayError(400, "INVALID_PARAMETER_VALUE", "Features must be finite numbers (no NaN or infinity), "
                                                           "and fit in 32-bit floats.")
    return x


def _json_type(value: Any) -> str:
    return {bool: "a boolean", str: "a string", type(None): "null", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------- predict


def run_model(loaded: LoadedModel, x: np.ndarray) -> tuple[list[Any], list[list[float]] | None]:
    """Run a session; return the predictions and, for classifiers, the class probabilities."""
    outputs = loaded.session.run(None, {loaded.input_name: x})
    predictions = np.asarray(outputs[0])
    predictions = predictions.reshape(len(x), -1)[:, 0] if predictions.ndim > 1 else predictions
    probabilities = None
    if len(outputs) > 1 and np.asarray(outputs[1]).ndim == 2:
        probabilities = np.asarray(outputs[1]).tolist()
    return predictions.tolist(), probabilities


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
    route = routing_rules.choose_route(routing, preview=preview, key=key)
    loaded = session_for(route["sha256"])
    x = parse_inputs(payload, route, loaded)
    request_id = request_id or uuid.uuid4().hex  # the audit middleware's id (the caller's X-Request-ID if sent)
    deployment_id = routing.get("deployment_id")
    try:
        predictions, probabilities = run_model(loaded, x)
    except Exception as error:
        recorder.record(state.endpoint_id, deployment_id, route["version_id"], "live",
                        (time.perf_counter() - started) * 1000, True, len(x), None, request_id, x, str(error)[:300])
        raise GatewayError(502, "MODEL_ERROR", f"Version {route['number']} failed on this input: "
                                               f"{str(error)[:300]}") from error
    elapsed_ms = (time.perf_counter() - started) * 1000
    recorder.record(state.endpoint_id, deployment_id, route["version_id"], "live", elapsed_ms, False, len(x),
                    predictions, request_id, x, None)
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


# ---------------------------------------------------------------------------------------------- shadow


class Mirror:
    """Runs shadow copies off the request path on one thread; drops copies rather than queue without bound."""

    MAX_PENDING = 256

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self._futures: list[Any] = []

    def submit(self, endpoint_id: int, deployment_id: int | None, shadow: dict[str, Any], x: np.ndarray,
               live: list[Any], request_id: str) -> None:
        """Queue one mirrored request (or count it dropped when the shadow cannot keep up)."""
        with self._lock:
            if self._pending >= self.MAX_PENDING:
                self.dropped += 1
                return
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stratum-shadow")
            future = self._pool.submit(self._run, endpoint_id, deployment_id, shadow, x, live, request_id)
            self._futures = [f for f in self._futures if not f.done()] + [future]

    def _run(self, endpoint_id: int, deployment_id: int | None, shadow: dict[str, Any], x: np.ndarray,
             live: list[Any], request_id: str) -> None:
        started = time.perf_counter()
        try:
            loaded = session_for(shadow["sha256"])
            predictions, _ = run_model(loaded, x)
        except Exception as error:
            recorder.record(endpoint_id, deployment_id, shadow["version_id"], "shadow",
                            (time.perf_counter() - started) * 1000, True, len(x), None, request_id, x,
                            str(error)[:300], compared=len(x), agreed=0)
        else:
            agreed = sum(1 for a, b in zip(predictions, live, strict=False) if _same(a, b))
            recorder.record(endpoint_id, deployment_id, shadow["version_id"], "shadow",
                            (time.perf_counter() - started) * 1000, False, len(x), predictions, request_id, x, None,
                            compared=len(x), agreed=agreed)
        finally:
            with self._lock:
                self._pending -= 1

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the mirrored requests queued so far (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        for future in list(self._futures):
            future.result(timeout=max(0.0, deadline - time.monotonic()))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-6)
    return a == b


mirror = Mirror()


# -------------------------------------------------------------------------------------------- recording


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_total_ms: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * (len(stats.LATENCY_BOUNDS_MS) + 1))
    labels: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    values: list[float] = field(default_factory=list)  # reservoir sample of numeric predictions
    seen_values: int = 0
    compared: int = 0
    agreed: int = 0


VALUE_SAMPLE = 200  # numeric predictions kept per version and bucket for the shift test
BUCKET_SECONDS = 10  # statistics resolution: analysis windows are honoured to within this


class Recorder:
    """Aggregates request statistics in memory per (endpoint, deployment, version, role, 10-second bucket); flushes
    them in batches."""

    MAX_SAMPLES = 1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[int, int | None, int, str, int], _Bucket] = {}
        self._samples: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def record(self, endpoint_id: int, deployment_id: int | None, version_id: int, role: str, latency_ms: float,
               error: bool, rows: int, predictions: list[Any] | None, request_id: str, x: np.ndarray | None,
               error_text: str | None, *, compared: int = 0, agreed: int = 0) -> None:
        """Count one request; keep a sample of it at STRATUM_SERVING_SAMPLE_RATE (and every error, up to a cap)."""
        minute = int(time.time() // BUCKET_SECONDS)  # the bucket's index (named for the charts' unit)
        with self._lock:
            bucket = self._buckets.get((endpoint_id, deployment_id, version_id, role, minute))
            if bucket is None:
                bucket = self._buckets[(endpoint_id, deployment_id, version_id, role, minute)] = _Bucket()
            bucket.requests += 1
            bucket.errors += bool(error)
            bucket.rows += rows
            bucket.latency_total_ms += latency_ms
            bucket.hist[stats.latency_bucket(latency_ms)] += 1
            if predictions is not None and predictions and not isinstance(predictions[0], float):
                for p in predictions:
                    bucket.labels[str(p)] += 1
            elif predictions:
                for value in predictions:  # reservoir sampling keeps a uniform sample of any number of values
                    bucket.seen_values += 1
                    if len(bucket.values) < VALUE_SAMPLE:
                        bucket.values.append(value)
                    else:
                        slot = random.randrange(bucket.seen_values)
                        if slot < VALUE_SAMPLE:
                            bucket.values[slot] = value
            bucket.compared += compared
            bucket.agreed += agreed
            sample = (error or random.random() < settings.STRATUM_SERVING_SAMPLE_RATE)
            if sample and len(self._samples) < self.MAX_SAMPLES and x is not None:
                self._samples.append({
                    "endpoint_id": endpoint_id, "deployment_id": deployment_id, "version_id": version_id,
                    "role": role, "request_id": request_id, "inputs": x[:20].tolist(),
                    "outputs": (predictions or [])[:20], "error": error_text or "", "latency_ms": latency_ms,
                    "at": datetime.now(UTC)})
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        interval = settings.STRATUM_SERVING_FLUSH_SECONDS
        if interval <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True,
                                                name="stratum-gateway-flush")
                self._thread.start()

    def _loop(self, interval: float) -> None:
        from django.db import connection

        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:
                log.exception("flushing gateway statistics failed")
            finally:
                connection.close()

    def flush(self) -> int:
        """Write what has been counted since the last flush in one transaction; return the rows written."""
        from django.db import transaction

        from deployments.models import PredictionSample, TrafficStat

        with self._lock:
            buckets, self._buckets = self._buckets, {}
            samples, self._samples = self._samples, []
        if not buckets and not samples:
            return 0
        stat_rows = [TrafficStat(endpoint_id=e, deployment_id=d, version_id=v, role=r,
                                 bucket=datetime.fromtimestamp(minute * BUCKET_SECONDS, UTC), requests=b.requests,
                                 errors=b.errors, rows=b.rows, latency_total_ms=b.latency_total_ms,
                                 latency_hist=b.hist, label_counts=dict(b.labels), value_sample=b.values,
                                 compared=b.compared,
                                 agreed=b.agreed)
                     for (e, d, v, r, minute), b in buckets.items()]
        sample_rows = [PredictionSample(**s) for s in samples]
        try:
            with transaction.atomic():
                TrafficStat.objects.bulk_create(stat_rows)
                PredictionSample.objects.bulk_create(sample_rows)
        except Exception:
            with self._lock:  # put them back so the next flush retries
                for key, b in buckets.items():
                    self._merge(key, b)
                self._samples = samples[: self.MAX_SAMPLES] + self._samples
            raise
        return len(stat_rows) + len(sample_rows)

    def _merge(self, key: tuple[int, int | None, int, str, int], b: _Bucket) -> None:
        mine = self._buckets.setdefault(key, _Bucket())
        mine.requests += b.requests
        mine.errors += b.errors
        mine.rows += b.rows
        mine.latency_total_ms += b.latency_total_ms
        mine.hist = stats.histogram_merge(mine.hist, b.hist)
        for label, count in b.labels.items():
            mine.labels[label] += count
        mine.values = (mine.values + b.values)[:VALUE_SAMPLE]
        mine.compared += b.compared
        mine.agreed += b.agreed

    def discard(self) -> None:
        """Drop what is buffered (tests)."""
        with self._lock:
            self._buckets, self._samples = {}, []


recorder = Recorder()


def drain() -> None:
    """Finish mirrored requests and write every buffered statistic now (tests, shutdown, the benchmark)."""
    mirror.wait()
    recorder.flush()


def reset() -> None:
    """Forget cached sessions, routing and tokens and buffered statistics (tests)."""
    _sessions.clear()
    _endpoints.clear()
    _tokens.clear()
    recorder.discard()


@atexit.register
def _flush_at_exit() -> None:  # a worker that exits cleanly loses at most nothing
    try:
        recorder.flush()
    except Exception:
        log.exception("final flush of gateway statistics failed")
