#!/usr/bin/env python3
"""Benchmark MLflow runs/search pages: queries and time per page as the page grows (issue 24: no N+1).

    python bench/run_search.py                                   # a scratch SQLite file under /tmp
    createdb -h 127.0.0.1 -U postgres stratum_bench_runs
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench_runs python bench/run_search.py --runs 2000

It builds one experiment of --runs runs (each with 2 params, 2 tags, 2 metrics of 3 points, a dataset input and a
logged model), then asks runs/search for pages of 10, 100 and 1000 through the MLflow-compatible API in-process
(Django's test client, no HTTP), and prints, per page size, the queries one page makes and the median and p95
milliseconds over --repeat requests. The same page shaped one run at a time (the pre-batching path, still what
runs/get does for one run) is timed beside it. Point DATABASE_URL at a scratch database: the script migrates it and
deletes what it built unless --keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.gettempdir()}/stratum-bench-runs-{os.getpid()}.sqlite3"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from registry import access  # noqa: E402
from registry.mlflow import shapes  # noqa: E402
from registry.models import Experiment, LoggedModel, Run, RunInput, RunMetric, RunParam, RunTag  # noqa: E402

PREFIX = "bench-run-search"


def build(n: int, user) -> Experiment:
    """One experiment of `n` runs with what runs/search shows, written in bulk."""
    exp = Experiment.objects.create(name=f"{PREFIX}-{os.getpid()}", owner=user)
    with transaction.atomic():
        runs = Run.objects.bulk_create([Run(run_id=f"{i:032x}", experiment=exp, name=f"r{i}", user=user,
                                            status="FINISHED", start_time=1_000 + i) for i in range(n)])
        RunParam.objects.bulk_create([RunParam(run=r, key=k, value=str(i)) for i, r in enumerate(runs)
                                      for k in ("depth", "lr")], batch_size=5000)
        RunTag.objects.bulk_create([RunTag(run=r, key=k, value="x") for r in runs for k in ("team", "mlflow.runName")],
                                   batch_size=5000)
        RunMetric.objects.bulk_create([RunMetric(run=r, key=k, value=step / 10, timestamp=step, step=step)
                                       for r in runs for k in ("loss", "auc") for step in range(3)], batch_size=5000)
        RunInput.objects.bulk_create([RunInput(run=r, name="train", digest=f"{i:x}", tags={"mlflow.data.context":
                                                                                           "training"})
                                      for i, r in enumerate(runs)], batch_size=5000)
        LoggedModel.objects.bulk_create([LoggedModel(model_id=f"m-{i:032x}", experiment=exp, name="clf",
                                                     source_run=r) for i, r in enumerate(runs)], batch_size=5000)
    return exp


def timed(fn, repeat: int) -> tuple[int, float, float]:
    """(queries of one call, median ms, p95 ms) of `fn` over `repeat` calls."""
    count = 0

    def counting(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return count, statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username=f"{PREFIX}-user")
    _, raw = access.token_create(user=user, actor=user, name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    print(f"database: {connection.vendor}; building {args.runs} runs ...", flush=True)
    exp = build(args.runs, user)
    try:
        print(f"{'page':>6} {'queries':>8} {'median ms':>10} {'p95 ms':>8} | one run at a time: "
              f"{'queries':>8} {'median ms':>10}", flush=True)
        for size in (10, 100, 1000):
            if size > args.runs:
                break

            def page(size: int = size) -> None:
                response = client.post("/api/2.0/mlflow/runs/search",
                                       {"experiment_ids": [str(exp.pk)], "max_results": size}, format="json")
                assert response.status_code == 200 and len(response.json()["runs"]) == size, response.content[:300]

            rows = list(Run.objects.filter(experiment=exp).select_related("experiment", "user")[:size])

            def one_at_a_time(rows: list = rows) -> None:
                [shapes.run(r) for r in rows]

            queries, median, p95 = timed(page, args.repeat)
            old_queries, old_median, _ = timed(one_at_a_time, max(1, args.repeat // 2))
            print(f"{size:>6} {queries:>8} {median:>10.1f} {p95:>8.1f} | {'':>18} {old_queries:>8} "
                  f"{old_median:>10.1f}", flush=True)
    finally:
        if not args.keep:
            exp.delete()


if __name__ == "__main__":
    main()
