"""Jobs on real PostgreSQL: a handler whose connection the server drops mid-job is retried on a fresh connection."""

from __future__ import annotations

import pytest
from django.db import connection

from registry.models import Job, JobState
from registry.pipeline import jobs
from tests.conftest import need_service

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_job_whose_connection_is_dropped_is_retried_on_a_fresh_one(settings):
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "this run uses SQLite (set DATABASE_URL to a PostgreSQL database)")
    import psycopg

    db = settings.DATABASES["default"]
    seen = []

    def drops_its_connection_once(job: Job) -> dict:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        seen.append(pid)
        if len(seen) == 1:  # the server goes away under the first attempt (an administrator, a failover)
            with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                                 dbname=db["NAME"], autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return {"jobs": Job.objects.count()}

    jobs.register_handler("test_drop", drops_its_connection_once, label="Connection dropped")
    job = jobs.job_enqueue(kind="test_drop", key="test_drop:1")  # runs eagerly after its commit
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 2 and job.result == {"jobs": 1}
    assert len(seen) == 2 and seen[0] != seen[1]  # the retry ran on a new server session
