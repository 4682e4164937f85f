#!/usr/bin/env python3
"""Benchmark the trust predicate: what quarantine costs a page of versions, an MLflow search and one download.

    createdb -h 127.0.0.1 -U postgres stratum_bench_quarantine
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench_quarantine python bench/quarantine.py
    python bench/quarantine.py --versions 500                 # SQLite (the embedded default), quicker

Point DATABASE_URL at a scratch database: the script migrates it and, unless --keep, deletes what it built.
One model with N versions of three files each (model.pkl, MLmodel, model.onnx); ONNX files unscanned (they need no
scan), one pickle in fifty still pending, one version in twenty quarantined, one quarantined file in four released.
It prints, as medians over --repeat runs: the batched trust of all N versions (queries and ms), MLflow's
model-versions/search shaping of all N versions with their status, the share of it spent on trust, a 100-version
page's trust, and the per-download check of one file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stratum.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from registry.mlflow import shapes  # noqa: E402
from registry.models import (  # noqa: E402
    Artifact,
    ArtifactRelease,
    ArtifactScan,
    Blob,
    ModelVersion,
    RegisteredModel,
    ReleaseState,
)
from registry.pipeline.scan.trust import ensure_servable, versions_trust  # noqa: E402

PREFIX = "bench-quarantine"
FILES = (("model.pkl", "pickle"), ("MLmodel", "mlmodel"), ("model.onnx", "onnx"))


def _sha(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, (PREFIX, *parts))).encode()).hexdigest()


def build(n: int, user: object) -> RegisteredModel:
    """Insert the model, its versions, files, scans and releases in bulk; return the model."""
    with transaction.atomic():
        model = RegisteredModel.objects.create(name=PREFIX, owner=user, last_version_number=n)
        versions = ModelVersion.objects.bulk_create(
            [ModelVersion(model=model, number=i + 1, creator=user) for i in range(n)], batch_size=2000)
        blobs = [Blob(sha256=_sha(v.number, path), size=100) for v in versions for path, _ in FILES]
        Blob.objects.bulk_create(blobs, batch_size=5000, ignore_conflicts=True)
        artifacts = Artifact.objects.bulk_create(
            [Artifact(version=v, path=path, blob_id=_sha(v.number, path), size=100, format=fmt)
             for v in versions for path, fmt in FILES], batch_size=5000)
        scans, releases = [], []
        for i, a in enumerate(artifacts):
            if i % 3 == 2 or (a.path == "model.pkl" and a.version.number % 50 == 7):
                continue  # ONNX files never scanned (they need no scan), one pickle in fifty still pending
            bad = a.path == "model.pkl" and a.version.number % 20 == 0
            scans.append(ArtifactScan(artifact=a, blob_id=a.blob_id, verdict="unsafe" if bad else "safe",
                                      quarantined=bad, offending=["posix.system"] if bad else [],
                                      scanner="bench"))
            if bad and a.version.number % 80 == 0:
                releases.append(ArtifactRelease(model=model, blob_id=a.blob_id, path=a.path, reason="bench",
                                                accepted_globals=["posix.system"], state=ReleaseState.APPROVED,
                                                requested_by=user))
        ArtifactScan.objects.bulk_create(scans, batch_size=5000)
        ArtifactRelease.objects.bulk_create(releases)
    return model


def _median_ms(fn, repeat: int) -> tuple[float, int]:
    fn()  # warm
    runs, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) * 1000)
        queries = len(ctx)
    return statistics.median(runs), queries


def cleanup() -> None:
    with transaction.atomic():
        model = RegisteredModel.objects.filter(name=PREFIX).first()
        if model is not None:
            ArtifactRelease.objects.filter(model=model).delete()
            ArtifactScan.objects.filter(artifact__version__model=model).delete()
            Artifact.objects.filter(version__model=model).delete()
            model.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    cleanup()
    user, _ = get_user_model().objects.get_or_create(username=f"{PREFIX}-user")
    t0 = time.perf_counter()
    model = build(args.versions, user)
    print(f"built {args.versions:,} versions x {len(FILES)} files in {time.perf_counter() - t0:.1f} s "
          f"({connection.vendor})")
    ids = list(model.versions.values_list("pk", flat=True))
    qs = ModelVersion.objects.filter(model=model).order_by("-number")

    trust_ms, trust_q = _median_ms(lambda: versions_trust(ids), args.repeat)
    states: dict[str, int] = {}
    for t in versions_trust(ids).values():
        states[str(t.state)] = states.get(str(t.state), 0) + 1
    print(f"trust of {len(ids):,} versions ({len(ids) * len(FILES):,} files): {trust_ms:.1f} ms, {trust_q} queries "
          f"-> {dict(sorted(states.items()))}")
    search_ms, search_q = _median_ms(lambda: shapes.version_rows(qs), args.repeat)
    print(f"MLflow search shaping of {len(ids):,} versions with their status: {search_ms:.1f} ms, {search_q} queries "
          f"(trust is {100 * trust_ms / search_ms:.0f}% of it)")
    page = ids[:100]
    page_ms, page_q = _median_ms(lambda: versions_trust(page), args.repeat)
    print(f"trust of a 100-version page: {page_ms:.2f} ms, {page_q} queries")
    artifact = Artifact.objects.select_related("version").get(version__model=model, version__number=1,
                                                              path="model.pkl")
    one_ms, one_q = _median_ms(lambda: ensure_servable(artifact), args.repeat * 10)
    print(f"per-download check of one file: {one_ms:.2f} ms, {one_q} queries")
    if not args.keep:
        cleanup()
        Blob.objects.filter(sha256__in=[_sha(n + 1, p) for n in range(args.versions) for p, _ in FILES]).delete()
        user.delete()


if __name__ == "__main__":
    main()
