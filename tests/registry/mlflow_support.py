"""Helpers for tests that drive the real `mlflow` client against a live Stratum server."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import access
from tests.conftest import free_port, need_service


def require_mlflow() -> None:
    """Skip (fail in CI) when the mlflow client is not installed."""
    if importlib.util.find_spec("mlflow") is None:
        need_service("mlflow", "the mlflow package is not installed (pip install -e '.[dev]')")


@pytest.fixture
def mlflow_env(live_server, monkeypatch):
    """point(user) -> MlflowClient talking to the live server with that user's fresh token."""
    require_mlflow()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import mlflow

    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)

    def point(user):
        _, raw = access.token_create(user=user, actor=user, name="mlflow")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", raw)
        # The fluent client remembers the last active experiment per process: an earlier test's id may not exist in
        # this test's database. Start from the default experiment, as a fresh process does.
        mlflow.set_experiment(experiment_id="0")
        return mlflow.MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)

    yield point
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_registry_uri(None)  # the client keeps these globally; later tests must not reach this server
    mlflow.set_tracking_uri(None)


@contextlib.contextmanager
def mlflow_server_process(directory: Path, *, timeout: float = 180) -> Iterator[str]:
    """Run a stock `mlflow server` (SQLite backend, proxied artifacts under `directory`); yield its URL; stop it."""
    require_mlflow()
    cli = Path(sys.executable).with_name("mlflow")
    if not cli.exists():
        cli = Path(shutil.which("mlflow") or "")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = directory / "mlflow-server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(cli), "server", "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
             "--artifacts-destination", str(directory / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory, env=env, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("mlflow server did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.25)
            yield url
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
