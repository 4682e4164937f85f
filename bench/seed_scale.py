#!/usr/bin/env python3
"""Seed the word-search corpus of bench/registry_api.py section (w): 10,000 models and 100,000 versions.

Created through the API this would take hours on a laptop, so it is written in bulk with the ORM, in the database of
the server under test (run it with the server's environment: DATABASE_URL and the settings module). The rows are
benchmark data only (no audit events, no files), with the versions' search text filled as the services would; the
corpus is recognised by its name prefix and built once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum .venv/bin/python bench/seed_scale.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PREFIX = "scale"
WORDS = ("wine", "churn", "fraud", "credit", "vision", "speech", "ranking", "forecast", "anomaly", "pricing")


def ensure_scale_corpus(models: int = 10_000, versions_per_model: int = 10, owner: str = "admin") -> float:
    """Make sure models scale-00000 … exist with `versions_per_model` versions each; return the seconds spent."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from registry.models import ModelTag, ModelVersion, RegisteredModel, VersionTag
    from registry.search.text import version_search_fill

    user = get_user_model().objects.filter(username=owner).first()
    existing = RegisteredModel.objects.filter(name__startswith=f"{PREFIX}-").count()
    if existing >= models:
        return 0.0
    start = time.perf_counter()
    batch = 1000
    for first in range(existing, models, batch):
        with transaction.atomic():
            rows = [RegisteredModel(
                name=f"{PREFIX}-{i:05d}", owner=user, last_version_number=versions_per_model,
                description=f"Bench model {i} for {WORDS[i % len(WORDS)]} in region {i % 37}.")
                for i in range(first, min(first + batch, models))]
            RegisteredModel.objects.bulk_create(rows, batch_size=batch)
            made = {m.name: m for m in RegisteredModel.objects.filter(name__in=[r.name for r in rows])}
            ModelTag.objects.bulk_create([ModelTag(model=m, key="domain", value=WORDS[int(m.name[-5:]) % 7].upper())
                                          for m in made.values()], batch_size=batch)
            versions = [ModelVersion(model=m, number=n, creator=user, description=f"retrain {n} of {m.name}",
                                     metrics={"auc": 0.5 + (n % 50) / 100})
                        for m in made.values() for n in range(1, versions_per_model + 1)]
            ModelVersion.objects.bulk_create(versions, batch_size=batch)
            stored = ModelVersion.objects.filter(model__in=made.values(), number=1)
            VersionTag.objects.bulk_create([VersionTag(version=v, key="dataset", value=f"{WORDS[v.model_id % 10]}-v1")
                                            for v in stored], batch_size=batch)
            # What the services keep current on every write (registry.search.text), written here after the bulk load.
            version_search_fill(ModelVersion.objects.filter(model__in=made.values()), batch=batch)
        print(f"  seeded {min(first + batch, models):,} / {models:,} models", flush=True)
    # Fresh planner statistics, as a database that grew over time would have (PostgreSQL's autovacuum gathers them a
    # while after a bulk load; SQLite only when asked): without them SQLite sorts every version for a page.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--versions-per-model", type=int, default=10)
    parser.add_argument("--owner", default="admin", help="user owning the models (default admin)")
    args = parser.parse_args()
    spent = ensure_scale_corpus(args.models, args.versions_per_model, args.owner)
    print(f"corpus ready ({spent:.1f}s spent seeding)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
