"""The production web server as deployed: uWSGI started from deploy/uwsgi.ini, driven over real sockets.

Many requests from one client session, large headers, a streamed upload and ranged download, and the stock mlflow
client registering and resolving a version and round-tripping a run artifact.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.uwsgi_support import uwsgi_stratum
from tests.registry.mlflow_support import require_mlflow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, token) of uWSGI serving a fresh SQLite Stratum with deploy/uwsgi.ini."""
    var = tmp_path_factory.mktemp("uwsgi-var")
    try:
        with uwsgi_stratum(var, processes=2) as (port, token):
            yield port, token
    finally:
        shutil.rmtree(var, ignore_errors=True)


def _call(conn: http.client.HTTPConnection, method: str, path: str, token: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_a_client_session_makes_many_requests_without_a_dropped_connection(server):
    import requests

    port, token = server
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"http://127.0.0.1:{port}/api/v1"
    assert session.post(f"{base}/models", json={"name": "web-session"}, timeout=10).status_code == 201
    for _ in range(20):
        response = session.get(f"{base}/models/web-session", timeout=10)
        assert response.status_code == 200 and response.json()["name"] == "web-session"
        assert response.headers["Connection"] == "close"  # said, so no client reuses a closed connection
    assert session.get(f"{base}/models/missing", timeout=10).status_code == 404


def test_large_headers_and_unauthenticated_calls_get_clean_answers(server):
    port, token = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, _, _ = _call(conn, "GET", "/api/v1/models", token, headers={"Cookie": "pad=" + "x" * 30_000})
    assert status == 200
    conn.request("GET", "/api/v1/models")
    response = conn.getresponse()
    assert response.status == 401 and "error" in json.loads(response.read())


def test_raw_upload_streams_in_and_downloads_whole_and_by_range(server):
    port, token = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    json_headers = {"Content-Type": "application/json"}
    assert _call(conn, "POST", "/api/v1/models", token, b'{"name": "web-files"}', json_headers)[0] == 201
    assert _call(conn, "POST", "/api/v1/models/web-files/versions", token, b"{}", json_headers)[0] == 201
    data = os.urandom(3 * 1024 * 1024 + 17)
    status, _, body = _call(conn, "PUT", "/api/v1/models/web-files/versions/1/artifacts/weights/model.bin", token,
                            data, {"Content-Type": "application/octet-stream"})
    assert status in (200, 201), body[:300]
    status, headers, body = _call(conn, "GET", "/api/v1/models/web-files/versions/1/artifacts/weights/model.bin",
                                  token)
    assert status == 200 and body == data
    assert headers["ETag"].strip('"') == hashlib.sha256(data).hexdigest()
    status, headers, body = _call(conn, "GET", "/api/v1/models/web-files/versions/1/artifacts/weights/model.bin",
                                  token, headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"


def test_a_refused_body_gets_its_answer_not_a_reset_connection(server):
    """The app reads what is left of a body it refuses (bounded): closing with unread bytes would reset the
    connection under the client, still sending, and it would never see the 413 or 404."""
    port, token = server
    too_big_json = b'{"name": "' + b"x" * (12 * 1024 * 1024) + b'"}'  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, _, body = _call(conn, "POST", "/api/v1/models", token, too_big_json,
                                {"Content-Type": "application/json"})
        assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status, _, body = _call(conn, "PUT", "/api/v1/models/no-such-model/versions/1/artifacts/a.bin", token,
                                b"y" * (8 * 1024 * 1024), {"Content-Type": "application/octet-stream"})
        assert status == 404 and json.loads(body)["error"]["code"] == "RESOURCE_DOES_NOT_EXIST"


def test_stock_mlflow_client_registers_resolves_and_round_trips_an_artifact(server, tmp_path, monkeypatch):
    require_mlflow()
    port, token = server
    url = f"http://127.0.0.1:{port}"
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    client.create_registered_model("web-mlflow")
    version = client.create_model_version("web-mlflow", source="s3://bucket/web-mlflow/model")
    client.set_registered_model_alias("web-mlflow", "champion", version.version)
    assert client.get_model_version_by_alias("web-mlflow", "champion").version == version.version

    experiment = client.create_experiment("web-exp")
    run = client.create_run(experiment)
    payload = tmp_path / "weights.bin"
    payload.write_bytes(os.urandom(2 * 1024 * 1024))
    client.log_artifact(run.info.run_id, str(payload), artifact_path="model")
    fetched = client.download_artifacts(run.info.run_id, "model/weights.bin", str(tmp_path / "back"))
    assert Path(fetched).read_bytes() == payload.read_bytes()


def test_a_change_through_one_process_retires_the_cached_reads_of_every_process(server):
    """Each process caches the alias it resolved; moving the alias through any one of them retires every copy,
    as the processes share one cache (deploy/uwsgi.ini: the file-based cache without REDIS_URL)."""
    from concurrent.futures import ThreadPoolExecutor

    port, token = server
    json_headers = {"Content-Type": "application/json"}

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            status, _, data = _call(conn, method, path, token, body, json_headers)
            return status, data
        finally:
            conn.close()

    assert call("POST", "/api/v1/models", b'{"name": "web-cache"}')[0] == 201
    for _ in range(2):
        assert call("POST", "/api/v1/models/web-cache/versions", b"{}")[0] == 201
    routes = ("/api/v1/models/web-cache/aliases/champion",
              "/api/2.0/mlflow/registered-models/alias?name=web-cache&alias=champion")

    def resolved(index: int) -> str:
        status, data = call("GET", routes[index % 2])
        assert status == 200, data[:300]
        body = json.loads(data)
        return str(body["version"] if "version" in body else body["model_version"]["version"])

    def concurrently() -> set[str]:  # many connections at once, so that every process answers some
        with ThreadPoolExecutor(8) as pool:
            return set(pool.map(resolved, range(64)))

    for number in ("1", "2", "1"):
        assert call("PUT", "/api/v1/models/web-cache/aliases/champion", f'{{"version": {number}}}'.encode())[0] == 200
        assert concurrently() == {number}
