#!/usr/bin/env python3
"""Measure what recording prediction batches costs per request, in CPU time (the GIL the flush thread holds):

    .venv/bin/python bench/trace_flush.py                 # 20,000 requests, 5 rounds, temporary SQLite
    .venv/bin/python bench/trace_flush.py --requests 5000 --rounds 3

Each round counts `--requests` synthetic requests with the gateway's recorder (two routes: a stable and a canary
version of one endpoint) and flushes them, as the background thread does: the request-path cost (record) and the
flush cost (statistics, lineage prediction batches, one trace record per request) are reported per request, as the
median over rounds of process CPU time, beside the load average. The temporary directory is removed at the end.
Run it from two trees (before and after a change) to compare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import django_on_sqlite, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median counts (default 5)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="stratum-trace-flush-"))
    try:
        django_on_sqlite(workdir, STRATUM_SERVING_FLUSH_SECONDS="0", STRATUM_SERVING_SAMPLE_RATE="0")
        import numpy as np
        from django.contrib.auth import get_user_model

        from deployments.models import Endpoint, Environment, PredictionRecord
        from deployments.serving import recording as recorder_module
        from deployments.serving.recording import recorder
        from registry import services as registry

        owner = get_user_model().objects.create_user("bench", password=None, is_staff=True)
        model = registry.model_create(actor=owner, name="trace-bench")
        versions = [registry.version_create(model=model, actor=owner, files=[]) for _ in range(2)]
        endpoint = Endpoint.objects.create(name="trace-bench", model=model,
                                           environment=Environment.objects.create(name="bench"))
        x = np.zeros((1, 4), dtype=np.float32)
        record_us, flush_us = [], []
        for round_ in range(args.rounds + 1):  # the first round warms up, uncounted
            ids = [uuid.uuid4().hex for _ in range(args.requests)]
            started = time.process_time()
            for i, rid in enumerate(ids):
                canary = i % 10 == 0
                recorder.record(endpoint.pk, None, versions[canary].pk, "live", 0.3, False, 1, [0], rid, x, None,
                                route_role="canary" if canary else "stable", generation=1)
            recorded = (time.process_time() - started) / args.requests * 1e6
            started = time.process_time()
            recorder.flush()
            if round_:
                record_us.append(recorded)
                flush_us.append((time.process_time() - started) / args.requests * 1e6)
        written = PredictionRecord.objects.count()
        load = Path("/proc/loadavg").read_text().split()[:3]
        say(f"{args.rounds} rounds (after one warm-up) of {args.requests:,} requests ({written:,} trace records "
            f"written), SQLite, "
            f"load average {' '.join(load)}")
        say(f"  tree: {Path(recorder_module.__file__).parents[2]}")
        say(f"  record (request path): median {statistics.median(record_us):.1f} µs/request CPU "
            f"(rounds: {', '.join(f'{v:.1f}' for v in record_us)})")
        say(f"  flush (background):    median {statistics.median(flush_us):.1f} µs/request CPU "
            f"(rounds: {', '.join(f'{v:.1f}' for v in flush_us)})")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
