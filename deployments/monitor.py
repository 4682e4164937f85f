"""The rollout monitor's clock for the embedded default: with no broker there is no Celery beat, so a daemon thread
in the web process evaluates rollouts every STRATUM_ROLLOUT_MONITOR_SECONDS (enabled by STRATUM_EMBEDDED_MONITOR)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def enabled() -> bool:
    """Whether this process should run the monitor itself: asked to, and no broker (so no beat) is configured."""
    return settings.STRATUM_EMBEDDED_MONITOR and not settings.REDIS_URL and settings.STRATUM_ROLLOUT_MONITOR_SECONDS > 0


def ensure_started() -> bool:
    """Start the monitor thread once per process when enabled; return whether it runs."""
    global _thread
    if running():
        return True
    if not enabled():
        return False
    with _lock:
        if _thread is None or not _thread.is_alive():
            _stop.clear()
            _thread = threading.Thread(target=_loop, args=(settings.STRATUM_ROLLOUT_MONITOR_SECONDS,), daemon=True,
                                       name="stratum-rollout-monitor")
            _thread.start()
    return True


def stop(timeout: float = 10.0) -> None:
    """Stop the monitor thread (tests, shutdown)."""
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)


def running() -> bool:
    """Whether this process's monitor thread is running."""
    return _thread is not None and _thread.is_alive()


def tick(*, now: datetime | None = None) -> int:
    """Run one round of the monitor: evaluate every progressing rollout, judged at `now` (the real time unless the
    caller injects a clock); return how many were looked at."""
    from deployments.services import rollouts_evaluate_all

    return rollouts_evaluate_all(now=now)


def _loop(interval: float) -> None:
    from django.db import connection

    while not _stop.wait(interval):
        try:
            tick()
        except Exception:  # the next tick tries again; a rollout is never left half-changed (one transaction each)
            log.exception("embedded rollout monitor tick failed")
        finally:
            connection.close()


class EmbeddedMonitorMiddleware:
    """Starts the embedded monitor with the first request a server process handles (never in other commands)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.started = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.started:
            self.started = True
            ensure_started()
        return self.get_response(request)
