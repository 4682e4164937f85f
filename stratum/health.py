"""Liveness and readiness probes.

/healthz answers from the process alone (no database, no cache, no broker), so a busy or locked database never
makes a live process look dead. /readyz asks the database, the broker and the cache at once, each in its own
thread, and answers within READY_SECONDS whatever they do: a probe that has not answered by then counts as failed.
The database and the broker decide readiness; the cache only degrades it (serving then counts rate limits per
process and registry reads go to the database), so a cache outage does not take a serving node out of rotation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse

READY_SECONDS = 1.5  # the whole readiness probe: every check together, well inside a 2 s probe timeout
DB_STATEMENT_MS = 1000  # PostgreSQL: the probe's own statement timeout
BROKER_TIMEOUT_SECONDS = 1.0  # connect and read timeouts of the broker ping


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up (touching nothing else)."""
    return JsonResponse({"status": "ok"})


def _database() -> str:
    """Run SELECT 1 on this thread's own connection (with a short statement timeout on PostgreSQL), then close it."""
    try:
        if connection.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {DB_STATEMENT_MS}")
                cursor.execute("SELECT 1")
        else:  # SQLite: no transaction, which would wait for the write lock (transactions begin IMMEDIATE)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    finally:
        connection.close()
    return "ok"


def _broker() -> str:
    """Ping the broker once, with short timeouts and no retries."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                                  socket_timeout=BROKER_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _cache() -> str:
    """Read a key from the shared cache (the cache's own short socket timeouts bound it)."""
    cache.get("readyz-probe")
    return "ok"


def _run_all(checks: dict[str, Callable[[], str]], deadline: float) -> dict[str, str | None]:
    """Run every check in its own daemon thread; return each one's result, an error, or None if still running at
    `deadline` (a stuck check finishes or times out on its own afterwards)."""
    results: dict[str, str | None] = dict.fromkeys(checks)

    def run(name: str, check: Callable[[], str]) -> None:
        try:
            results[name] = check()
        except Exception as exc:  # any failure of a dependency means "not ready": report which, never raise
            results[name] = f"unreachable: {exc.__class__.__name__}"

    threads = [threading.Thread(target=run, args=item, daemon=True, name=f"readyz-{item[0]}")
               for item in checks.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return dict(results)


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database answers, and the broker too when one is configured, within READY_SECONDS; a cache
    that does not answer is reported as degraded, not failed."""
    checks: dict[str, Callable[[], str]] = {"database": _database, "cache": _cache}
    if settings.REDIS_URL:
        checks["broker"] = _broker
    results = _run_all(checks, time.monotonic() + READY_SECONDS)
    report = {name: result or f"no answer within {READY_SECONDS} s" for name, result in results.items()}
    if not settings.REDIS_URL:
        report["broker"] = "in-process (no REDIS_URL)"
    if report["cache"] != "ok":
        report["cache"] = (f"degraded ({report['cache']}): serving rate limits are counted per process, "
                           "registry reads go to the database")
    ready = report["database"] == "ok" and report["broker"] in ("ok", "in-process (no REDIS_URL)")
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": report}, status=200 if ready else 503)
