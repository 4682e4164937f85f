"""The gateway's request statistics: counted in memory per endpoint, deployment, version, role and 10-second
bucket (with sampled predictions), and written in batches by a background thread, so the request path never waits
for the database."""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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


@atexit.register
def _flush_at_exit() -> None:  # a worker that exits cleanly loses at most nothing
    try:
        recorder.flush()
    except Exception:
        log.exception("final flush of gateway statistics failed")
