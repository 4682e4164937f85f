"""Two uWSGI web nodes with separate local folders, sharing only PostgreSQL, Redis and an S3 server (SeaweedFS):
an upload through node A downloads through node B; a token revoked on A is refused on B within
STRATUM_TOKEN_CACHE_SECONDS; a routing change on A reaches B within STRATUM_ROUTING_REFRESH_SECONDS; the serving
rate limit is one count across both."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import redis
import requests
from django.db import connection

from deployments import services as deployment_services
from registry import access, services
from registry.models import RegisteredModel
from registry.pipeline import handlers, signing  # noqa: F401 - installs the job handlers
from registry.pipeline.jobs import job_run
from registry.pipeline.scan.services import scan_enqueue
from tests.conftest import need_service
from tests.deployments.conftest import SIGNATURE, iris_onnx
from tests.integration.test_pipeline_worker import REDIS_URL, _database_url, _need_redis
from tests.integration.uwsgi_support import uwsgi_stratum
from tests.s3_support import s3_artifacts, seaweed  # noqa: F401 - fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3, pytest.mark.django_db(transaction=True)]

TOKEN_CACHE_SECONDS = 2
ROUTING_REFRESH_SECONDS = 1
RATE_PER_MINUTE = 6
ROW = [5.1, 3.5, 1.4, 0.2]


def _servable(model, owner):
    version = services.version_create(model=model, actor=owner, signature=SIGNATURE, files=[])
    from tests.conftest import spooled

    services.artifact_add(version=version, actor=owner, path="model.onnx", upload=spooled(iris_onnx("good")))
    for artifact in version.artifacts.all():
        job_run(scan_enqueue(artifact).pk)
    job_run(signing.sign_enqueue(version=version, actor=owner).pk)
    return version


def _within(seconds: float, what: str, check) -> float:
    """Poll `check` until it holds; return how long it took (fail past `seconds`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - started


def test_two_nodes_share_nothing_local(owner, staff, tmp_path, settings, s3_artifacts):  # noqa: F811
    if connection.vendor != "postgresql":
        need_service("PostgreSQL", "this run uses SQLite (set DATABASE_URL to a PostgreSQL database)")
    _need_redis()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # Every node signs and verifies with the one key a deployment gives them all (docker-compose.yml).
    settings.STRATUM_SIGNING_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    queue = f"stratum-test-{uuid.uuid4().hex[:12]}"
    prefix = settings.STORAGES["artifacts"]["OPTIONS"]["location"]
    shared = {"DATABASE_URL": _database_url(), "REDIS_URL": REDIS_URL, "SECRET_KEY": "two-nodes-" + "k" * 50,
              "STRATUM_SIGNING_KEY": settings.STRATUM_SIGNING_KEY,
              "STRATUM_CELERY_QUEUE": queue, "STRATUM_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
              "STRATUM_ROUTING_REFRESH_SECONDS": str(ROUTING_REFRESH_SECONDS),
              "STRATUM_SERVING_RATE_PER_MINUTE": str(RATE_PER_MINUTE), **s3_artifacts.env(prefix)}
    model = services.model_create(actor=owner, name="churn")
    first = _servable(model, owner)
    environment = deployment_services.environment_create(actor=staff, name="staging", description="")
    endpoint = deployment_services.endpoint_create(actor=owner, name="churn-staging", environment=environment,
                                                   model=model)
    deployment_services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=first.number)
    services.model_create(actor=owner, name="store")
    services.version_create(model=RegisteredModel.objects.get(name="store"), actor=owner, files=[])
    api_token = access.token_create(user=owner, actor=owner, name="api")[1]
    api = {"Authorization": f"Bearer {api_token}"}

    def start(name: str):
        node = uwsgi_stratum(tmp_path / name, processes=1, env=shared)
        return node, node.__enter__()[0]

    with ExitStack() as stack:
        with ThreadPoolExecutor(2) as pool:  # both nodes start at once (each migrates, makes a token, boots)
            futures = [pool.submit(start, name) for name in ("node-a", "node-b")]
        for future in futures:  # every node that started is stopped at the end, even if the other failed
            if future.exception() is None:
                stack.push(future.result()[0].__exit__)
        port_a, port_b = (future.result()[1] for future in futures)
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"

        # An upload through A downloads through B, byte for byte (neither has it on its local disk).
        data = os.urandom(3 * 1024 * 1024)
        put = requests.put(f"{a}/api/v1/models/store/versions/1/artifacts/extra/data.bin", data=data,
                           headers={**api, "Content-Type": "application/octet-stream"}, timeout=60)
        assert put.status_code == 201, put.text
        got = requests.get(f"{b}/api/v1/models/store/versions/1/artifacts/extra/data.bin",
                           headers=api, timeout=60)
        assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        for node in ("node-a", "node-b"):
            assert not list((tmp_path / node).rglob("blobs")), f"{node} kept a blob on its local disk"

        def predict(base: str, token: str) -> requests.Response:
            return requests.post(f"{base}/serve/churn-staging/predict", data=json.dumps({"rows": [ROW]}),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                 timeout=30)

        # A routing change made on A reaches B within the refresh interval.
        serve_token = access.token_create(user=owner, actor=owner, name="serve", scopes=["serve"])[1]
        assert predict(b, serve_token).json()["version"] == first.number  # B has the routing cached now
        second = _servable(model, owner)
        started = requests.post(f"{a}/api/v1/deployments", headers=api, timeout=30, json={
            "endpoint": "churn-staging", "strategy": "direct", "version": second.number})
        assert started.status_code == 201, started.text
        took = _within(ROUTING_REFRESH_SECONDS + 2, "the routing change reaching B",
                       lambda: predict(b, serve_token).json()["version"] == second.number)
        print(f"routing change on A served by B after {took:.2f} s")

        # A token revoked on A is refused on B within the token cache lifetime.
        doomed, raw = access.token_create(user=owner, actor=owner, name="doomed", scopes=["serve"])
        assert predict(b, raw).status_code == 200  # B has it cached
        revoked = requests.delete(f"{a}/api/v1/tokens/{doomed.prefix}", headers=api, timeout=30)
        assert revoked.status_code == 200, revoked.text
        took = _within(TOKEN_CACHE_SECONDS + 2, "B refusing the revoked token",
                       lambda: predict(b, raw).status_code == 401)
        print(f"token revoked on A refused by B after {took:.2f} s")

        # The serving rate limit counts requests on both nodes together.
        limited = access.token_create(user=owner, actor=owner, name="limited", scopes=["serve"])[1]
        if time.time() % 60 > 45:  # the count is per minute: start early in one
            time.sleep(60 - time.time() % 60 + 0.5)
        codes = [predict(a if i % 2 else b, limited).status_code for i in range(RATE_PER_MINUTE + 2)]
        assert codes == [200] * RATE_PER_MINUTE + [429, 429], codes
    redis.Redis.from_url(REDIS_URL).delete(queue)
