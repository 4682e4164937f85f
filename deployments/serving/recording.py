"""The gateway's request statistics: counted in memory per endpoint, deployment, version, role and 10-second
bucket (with sampled predictions), and written in batches by a background thread, so the request path never waits
for the database. Each flush also writes the lineage's prediction batches (one node per endpoint, version, routing
role and generation, and window, produced by the version and its deployment) and one record per request id, so any
answer traces back to what produced it."""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings

from deployments import stats

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    """What one (endpoint, deployment, version, role, bucket) has counted since the last flush."""

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
# This process, as prediction batches name it (host, pid and a start token: a restarted pid is another process).
PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# What the requests of one prediction batch share: endpoint, deployment, version, traffic role, routing role and
# routing generation.
_Route = tuple[int, int | None, int, str, str, int]


class _Request(NamedTuple):
    """One answered request, as the trace needs it (a tuple: built on the request path, under the lock)."""

    route: _Route
    request_id: str
    at: float
    error: bool
    rows: int
    schema: str


BUCKET_SECONDS = 10  # statistics resolution: analysis windows are honoured to within this


class Recorder:
    """Aggregates request statistics in memory per (endpoint, deployment, version, role, 10-second bucket); flushes
    them in batches."""

    MAX_SAMPLES = 1000
    MAX_REQUESTS = 500_000  # requests held for the trace while the database does not answer; older ones go first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One flush at a time in a process: a prediction batch's identity includes the process, so two flushes of
        # one window running side by side (the background thread and a drain) would both create its node.
        self._flushing = threading.Lock()
        self._buckets: dict[tuple[int, int | None, int, str, int], _Bucket] = {}
        self._samples: list[dict[str, Any]] = []
        self._requests: list[_Request] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def record(self, endpoint_id: int, deployment_id: int | None, version_id: int, role: str, latency_ms: float,
               error: bool, rows: int, predictions: list[Any] | None, request_id: str, x: np.ndarray | None,
               error_text: str | None, *, compared: int = 0, agreed: int = 0, route_role: str = "",
               generation: int = 0) -> None:
        """Count one request and remember its id for the trace; keep a sample of it at STRATUM_SERVING_SAMPLE_RATE
        (and every error, up to a cap)."""
        now = time.time()
        minute = int(now // BUCKET_SECONDS)  # the bucket's index (named for the charts' unit)
        traced = settings.STRATUM_PREDICTION_BATCHES
        if traced:
            schema = f"{x.shape[1] if x is not None and x.ndim == 2 else 0}:{x.dtype if x is not None else ''}"
        with self._lock:
            if len(self._requests) >= self.MAX_REQUESTS:
                del self._requests[: self.MAX_REQUESTS // 10]
            if traced:
                self._requests.append(_Request((endpoint_id, deployment_id, version_id, role, route_role, generation),
                                               request_id, now, bool(error), rows, schema))
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
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        from django.db import transaction

        from deployments.models import PredictionSample, TrafficStat

        with self._lock:
            buckets, self._buckets = self._buckets, {}
            samples, self._samples = self._samples, []
            requests, self._requests = self._requests, []
        if not buckets and not samples and not requests:
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
                traced = _write_batches(requests, samples)
        except Exception:
            with self._lock:  # put them back so the next flush retries
                for key, b in buckets.items():
                    self._merge(key, b)
                self._samples = samples[: self.MAX_SAMPLES] + self._samples
                self._requests = requests[-self.MAX_REQUESTS:] + self._requests
            raise
        return len(stat_rows) + len(sample_rows) + traced

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
            self._buckets, self._samples, self._requests = {}, [], []


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def _write_batches(requests: list[_Request], samples: list[dict[str, Any]]) -> int:
    """Write one prediction batch per (endpoint, deployment, version, role, routing role, generation, window), then
    one narrow trace record per request (request id, batch, time); return the rows written."""
    from deployments.models import Endpoint, PredictionRecord
    from registry.lineage.services import BatchSpec, prediction_batches_record

    if not requests:
        return 0
    window = max(int(settings.STRATUM_PREDICTION_BATCH_SECONDS), BUCKET_SECONDS)
    groups: dict[tuple[_Route, int], list[_Request]] = defaultdict(list)
    for r in requests:
        groups[(r.route, int(r.at // window))].append(r)
    sampled = defaultdict(list)
    for s in samples:
        sampled[s["request_id"]].append({"inputs": s["inputs"], "outputs": s["outputs"], "error": s["error"]})
    names = dict(Endpoint.objects.filter(pk__in={route[0] for route, _ in groups}).values_list("pk", "name"))
    groups = {key: rows for key, rows in groups.items() if key[0][0] in names}  # an endpoint deleted meanwhile
    specs = []
    for ((endpoint_id, deployment_id, version_id, role, route_role, generation), index), rows in groups.items():
        endpoint = names[endpoint_id]
        start = datetime.fromtimestamp(index * window, UTC)
        end = datetime.fromtimestamp((index + 1) * window, UTC)
        schemas = sorted({r.schema for r in rows})
        specs.append(BatchSpec(
            version_id=version_id, name=f"{endpoint} {route_role or role} g{generation} {start:%Y-%m-%d %H:%M}",
            endpoint=endpoint, window_start=start, window_end=end, row_count=sum(r.rows for r in rows),
            process=PROCESS, deployment_name=f"{endpoint}#{deployment_id}" if deployment_id else "",
            properties={"requests": len(rows), "errors": sum(r.error for r in rows), "traffic_role": role,
                        "route_role": route_role, "routing_generation": generation,
                        "input_schema": schemas, "input_schema_digest": _digest(schemas),
                        "sampled": sum(len(sampled.get(r.request_id, ())) for r in rows),
                        "sample_digest": _digest([sampled.get(r.request_id, []) for r in rows
                                                  if r.request_id in sampled])}))
    nodes = prediction_batches_record(specs)
    wanted: dict[tuple[int, _Route], list[_Request]] = defaultdict(list)
    for node, ((route, _), rows) in zip(nodes, groups.items(), strict=True):
        if node is not None:  # None: the version was deleted meanwhile
            wanted[(node.pk, route)] += rows
    batch_ids = _batches_ensure(wanted)
    # Per request only what differs: its id and time. The batch id is a plain integer (no related-object checks), the
    # time one conversion from the float the request path kept.
    records = [PredictionRecord(request_id=r.request_id[:64], batch_id=batch_id, at=datetime.fromtimestamp(r.at, UTC))
               for key, rows in wanted.items() for batch_id in (batch_ids[key],) for r in rows]
    PredictionRecord.objects.bulk_create(records, batch_size=5000)
    return len(nodes) + len(records)


def _batches_ensure(wanted: dict[tuple[int, _Route], list[_Request]]) -> dict[tuple[int, _Route], int]:
    """Return the PredictionBatch id per (lineage node id, route), creating the missing ones: a window's later flushes
    reuse the batch its first flush created (a node is this process's own, so no other writer races for it)."""
    from deployments.models import PredictionBatch

    found: dict[tuple[int, _Route], int] = {}
    existing = PredictionBatch.objects.filter(node_id__in={node_id for node_id, _ in wanted})
    for pk, node_id, *route in existing.values_list("pk", "node_id", "endpoint_id", "deployment_id", "version_id",
                                                    "role", "route_role", "generation"):
        found.setdefault((node_id, tuple(route)), pk)
    missing = [key for key in wanted if key not in found]
    made = PredictionBatch.objects.bulk_create([
        PredictionBatch(node_id=node_id, endpoint_id=e, deployment_id=d, version_id=v, role=role,
                        route_role=route_role, generation=generation)
        for node_id, (e, d, v, role, route_role, generation) in missing])
    found.update((key, batch.pk) for key, batch in zip(missing, made, strict=True))
    return found


recorder = Recorder()


@atexit.register
def _flush_at_exit() -> None:  # a worker that exits cleanly loses at most nothing
    try:
        recorder.flush()
    except Exception:
        log.exception("final flush of gateway statistics failed")
