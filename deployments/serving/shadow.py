"""Shadow traffic: mirrored copies of live requests run on the candidate off the request path, their answers
compared with what the caller got (and never returned)."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from deployments.serving.recording import recorder
from deployments.serving.sessions import run_model, session_for


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
                            str(error)[:300], compared=len(x), agreed=0, route_role="shadow")
        else:
            agreed = sum(1 for a, b in zip(predictions, live, strict=False) if _same(a, b))
            recorder.record(endpoint_id, deployment_id, shadow["version_id"], "shadow",
                            (time.perf_counter() - started) * 1000, False, len(x), predictions, request_id, x, None,
                            compared=len(x), agreed=agreed, route_role="shadow")
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
