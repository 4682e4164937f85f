"""Helpers for tests that drive the real `mlflow` client against a live Stratum server."""

from __future__ import annotations

import importlib.util

import pytest

from registry import access
from tests.conftest import need_service


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
        return mlflow.MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)

    yield point
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_registry_uri(None)  # the client keeps these globally; later tests must not reach this server
    mlflow.set_tracking_uri(None)
