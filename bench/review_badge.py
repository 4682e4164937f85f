"""Benchmark the Reviews badge: the one query that counts the requests and cards waiting for a reviewer.

Usage: .venv/bin/python bench/review_badge.py [--models 20] [--versions 10] [--runs 200]
Runs against a throw-away SQLite database (or DATABASE_URL: use a scratch database). Each model gets `versions`
versions, an open promotion request for each, and a card in review for every other version; the reviewer holds
the role on half the models directly and on the rest through a group.
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


def main() -> None:
    """Seed the inbox, then time the badge count and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="stratum-bench-")
    os.environ.setdefault("STRATUM_VAR_DIR", scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance import selectors
    from governance.models import CardState, ModelCard, PromotionRequest
    from registry import access, services
    from registry.models import Role

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    owner = users.create_user(f"bench-owner-{os.getpid()}")
    engineer = users.create_user(f"bench-engineer-{os.getpid()}")
    reviewer = users.create_user(f"bench-reviewer-{os.getpid()}")
    group = Group.objects.create(name=f"bench-reviewers-{os.getpid()}")
    reviewer.groups.add(group)
    started = time.perf_counter()
    for m in range(args.models):
        model = services.model_create(actor=owner, name=f"bench-{os.getpid()}-{m}")
        grantee = {"user": reviewer} if m % 2 == 0 else {"group": group}
        access.role_grant(model=model, actor=owner, role=Role.REVIEWER, **grantee)
        access.role_grant(model=model, actor=owner, role=Role.CONTRIBUTOR, user=engineer)
        versions = [services.version_create(model=model, actor=engineer, metrics={"auc": 0.8})
                    for _ in range(args.versions)]
        PromotionRequest.objects.bulk_create(
            PromotionRequest(model=model, version=v, kind="alias", target="champion", justification="bench",
                             requested_by=engineer, approvals_required=2) for v in versions)
        ModelCard.objects.bulk_create(
            ModelCard(model=model, version=v, state=CardState.IN_REVIEW, submitted_by=engineer, sha256="0" * 64,
                      completeness=100) for v in versions[::2])
    seed_s = time.perf_counter() - started
    reviewer = users.get(pk=reviewer.pk)
    with CaptureQueriesContext(connection) as queries:
        count = selectors.review_waiting_count(actor=reviewer)
    timings = []
    for _ in range(args.runs):
        fresh = users.get(pk=reviewer.pk)  # no role or group cache carried between runs, as in a new request
        started = time.perf_counter()
        selectors.review_waiting_count(actor=fresh)
        timings.append(time.perf_counter() - started)
    timings.sort()
    print(f"database: {connection.vendor}; seeded {args.models} models in {seed_s:.1f}s")
    print(f"waiting for the reviewer: {count} ({args.models * args.versions} requests, "
          f"{args.models * ((args.versions + 1) // 2)} cards)")
    print(f"queries per count: {len(queries)}")
    print(f"count over {args.runs} runs: median {statistics.median(timings) * 1e3:.2f} ms, "
          f"p95 {timings[int(len(timings) * 0.95) - 1] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
