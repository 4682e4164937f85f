#!/usr/bin/env python3
"""Benchmark the experiment and run pages: build a large experiment, render each page in-process, print times.

    createdb -h 127.0.0.1 -U postgres stratum_bench_tracking
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench_tracking python bench/tracking_pages.py
    ... python bench/tracking_pages.py --runs 200 --steps 100      # quicker

Point DATABASE_URL at a scratch database: the script migrates it and, unless --keep, deletes what it built.
One experiment holds --runs runs, each with 2 params, --metrics metrics of --steps points each, a dataset and a
file; one more run holds a long history (--long-steps points per metric) for the run page. Each page is rendered
through Django's test client (URL routing, the view, its selectors and templates; no HTTP server), --repeat
times; the script prints the median and p95 time and the number of SQL queries of each page, which must not grow
with the data (the pages read it in a fixed number of queries).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from registry.models import Experiment, Run, RunInput, RunMetric, RunParam, RunTag  # noqa: E402

T0 = 1_700_000_000_000


def build(args: argparse.Namespace, user) -> tuple[Experiment, Run, list[Run]]:
    """Bulk-create the experiment, its runs and their metric histories."""
    exp = Experiment.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}", owner=user)
    runs = [Run(run_id=uuid.uuid4().hex, experiment=exp, name=f"run-{i}", user=user, status="FINISHED",
                start_time=T0 + i * 1000, end_time=T0 + i * 1000 + 500) for i in range(args.runs)]
    long_run = Run(run_id=uuid.uuid4().hex, experiment=exp, name="long", user=user, status="FINISHED",
                   start_time=T0 - 1, end_time=T0)
    Run.objects.bulk_create([*runs, long_run], batch_size=2000)
    params, metrics, tags, inputs = [], [], [], []
    for i, run in enumerate(runs):
        params += [RunParam(run=run, key="max_depth", value=str(i % 10)), RunParam(run=run, key="lr", value="0.1")]
        tags.append(RunTag(run=run, key="mlflow.runName", value=run.name))
        inputs.append(RunInput(run=run, name="train", digest=f"d{i % 5}"))
        for m in range(args.metrics):
            metrics += [RunMetric(run=run, key=f"metric_{m}", value=(i * 7 + s) % 100 / 100, step=s,
                                  timestamp=T0 + s) for s in range(args.steps)]
        if len(metrics) > 50_000:
            RunMetric.objects.bulk_create(metrics, batch_size=5000)
            metrics = []
    for m in range(args.metrics):
        metrics += [RunMetric(run=long_run, key=f"metric_{m}", value=s / args.long_steps, step=s, timestamp=T0 + s)
                    for s in range(args.long_steps)]
    RunMetric.objects.bulk_create(metrics, batch_size=5000)
    RunParam.objects.bulk_create(params, batch_size=5000)
    RunTag.objects.bulk_create(tags, batch_size=5000)
    RunInput.objects.bulk_create(inputs, batch_size=5000)
    return exp, long_run, runs


def measure(client: Client, url: str, repeat: int) -> tuple[float, float, int, int]:
    """Median and p95 milliseconds, the query count and the status of GET `url`."""
    times, queries, status = [], 0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - start) * 1000)
        queries, status = len(ctx.captured_queries), response.status_code
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], queries, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--long-steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep what the benchmark built")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    user = user_model.objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}")
    print(f"building {args.runs} runs x {args.metrics} metrics x {args.steps} steps, and one run with "
          f"{args.metrics} x {args.long_steps} points on {connection.vendor} ...", flush=True)
    started = time.perf_counter()
    exp, long_run, runs = build(args, user)
    print(f"built in {time.perf_counter() - started:.1f} s ({RunMetric.objects.filter(run__experiment=exp).count()}"
          " metric points)\n", flush=True)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    pages = [
        ("experiment list", "/experiments/"),
        ("experiment page (50 of all runs, 5 metric cols)", f"/experiments/{exp.pk}/"),
        ("  filtered: metrics.metric_0 > 0.5 and params.max_depth = '3'",
         f"/experiments/{exp.pk}/?filter=metrics.metric_0+%3E+0.5+and+params.max_depth+%3D+%273%27"),
        ("  sorted: metrics.metric_1 DESC", f"/experiments/{exp.pk}/?order=metrics.%60metric_1%60+DESC"),
        ("  last page", f"/experiments/{exp.pk}/?page=last"),
        (f"run page ({args.metrics} metrics x {args.steps} steps)", f"/runs/{runs[0].run_id}/"),
        (f"run page ({args.metrics} metrics x {args.long_steps} steps, charts thinned)", f"/runs/{long_run.run_id}/"),
        ("compare 5 runs", "/compare/runs/?runs=" + ",".join(r.run_id for r in runs[:5])),
    ]
    print(f"{'page':<70} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'status':>7}")
    try:
        for label, url in pages:
            median, p95, queries, status = measure(client, url, args.repeat)
            print(f"{label:<70} {median:>10.1f} {p95:>8.1f} {queries:>8} {status:>7}", flush=True)
    finally:
        if not args.keep:
            exp.delete()
            user.delete()


if __name__ == "__main__":
    main()
