"""Section (w) of bench/registry_api.py, server side: what each page costs inside the server.

Run beside the server with its environment (DATABASE_URL, the settings module): each page is requested in this
process through Django's test client (the whole middleware and DRF stack, no HTTP), its SQL statements are
captured, and then replayed on their own, so a page's time splits into the database's part and the rest. On a
shared, loaded machine the SQL time is the figure to judge the database by; the CPU time is this process's own.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class PageCost:
    """One page as the server sees it: queries, and medians in milliseconds."""

    queries: int
    sql_ms: float  # the page's statements replayed on their own (executed and fetched), summed
    request_ms: float  # the whole request in-process (middleware, DRF, SQL, rendering), no HTTP
    cpu_ms: float  # this process's CPU time for the request


class _Capture:
    """A database execute wrapper that notes each statement and its parameters."""

    def __init__(self, statements: list[tuple[str, Any]]) -> None:
        self.statements = statements

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((sql, params))
        return execute(sql, params, many, context)


def _setup() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
    import django

    django.setup()


def page_costs(token: str, pages: dict[str, tuple[str, dict[str, Any]]], repeats: int) -> dict[str, PageCost]:
    """Measure each (path, params) page `repeats` times; return its cost by label."""
    _setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    out: dict[str, PageCost] = {}
    for label, (path, params) in pages.items():
        statements: list[tuple[str, Any]] = []
        capture = _Capture(statements)
        if client.get(path, params).status_code != 200:  # warm: the token's first use, the plans
            raise RuntimeError(f"GET {path} {params} did not answer 200")
        with connection.execute_wrapper(capture):
            client.get(path, params)
        requests, cpus, sqls = [], [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            client.get(path, params)
            requests.append(time.perf_counter() - t0)
            cpus.append(time.thread_time() - c0)
        for _ in range(repeats):
            spent = 0.0
            with connection.cursor() as cursor:
                for sql, sql_params in statements:
                    t0 = time.perf_counter()
                    cursor.execute(sql, sql_params)
                    cursor.fetchall()
                    spent += time.perf_counter() - t0
            sqls.append(spent)
        out[label] = PageCost(queries=len(statements), sql_ms=statistics.median(sqls) * 1000,
                              request_ms=statistics.median(requests) * 1000, cpu_ms=statistics.median(cpus) * 1000)
    return out
