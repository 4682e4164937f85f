"""Every route that takes an artifact path applies the upload's path rules: a path no upload could store is a 400.

Before, reads and listings looked such paths up and answered 404 or an empty listing, so a client could not tell
"no such file" from "this path is refused", and the MLflow listing answered `{}` for `/etc`.
"""

from __future__ import annotations

import pytest

from registry.models import Artifact

REFUSED = ["/etc/passwd", "C:/x.pkl", "c:x.pkl", "a\\b.pkl", "~/x", "%2e%2e/x", "a/%2E%2E/%2e%2e/b", "a/./b"]


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


@pytest.fixture
def version(registered_model, make_version):
    return make_version(registered_model, files={"model.pkl": b"\x80\x04N.", "sub/readme.txt": b"hello"})


def _native_error(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "INVALID_PARAMETER_VALUE" and body["error"]["message"], body
    return body["error"]


def _mlflow_error(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and body["message"], body
    return body


def test_a_stored_file_still_downloads_and_lists(api, version):
    assert api.get("/api/v1/models/churn/versions/1/artifacts/sub/readme.txt").status_code == 200
    root = f"registry/{version.model_id}/{version.number}"
    listing = api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": root}).json()
    assert {f["path"] for f in listing["files"]} == {"model.pkl", "sub"}
    listing = api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": f"{root}/sub/"}).json()
    assert listing["files"] == [{"path": "readme.txt", "is_dir": False, "file_size": 5}]


@pytest.mark.parametrize("path", REFUSED)
def test_native_download_of_a_refused_path_is_400(api, version, path):
    _native_error(api.get(f"/api/v1/models/churn/versions/1/artifacts/{path}"))


@pytest.mark.parametrize("path", REFUSED)
def test_native_delete_of_a_refused_path_is_400_and_deletes_nothing(api, version, path):
    _native_error(api.delete(f"/api/v1/models/churn/versions/1/artifacts/{path}"))
    assert Artifact.objects.filter(version=version).count() == 2


@pytest.mark.parametrize("path", REFUSED)
def test_mlflow_listing_of_a_refused_path_is_400_not_an_empty_listing(api, version, path):
    _mlflow_error(api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": path}))


@pytest.mark.parametrize("suffix", ["/../../etc", "/%2e%2e/x", "/a\\b", "/\x01x"])
def test_mlflow_listing_under_a_real_root_refuses_traversal(api, version, suffix):
    _mlflow_error(api.get("/api/2.0/mlflow-artifacts/artifacts",
                          {"path": f"registry/{version.model_id}/{version.number}{suffix}"}))


@pytest.mark.parametrize("path", ["/etc/passwd", "C:/x.pkl", "%2e%2e/%2e%2e/etc/passwd"])
def test_mlflow_artifact_download_of_a_refused_path_is_400(api, version, path):
    _mlflow_error(api.get(f"/api/2.0/mlflow-artifacts/artifacts/{path}"))


def test_mlflow_listing_of_an_unknown_root_stays_empty(api, version):
    """MLflow answers an empty object for a directory with nothing in it; a well-formed unknown root is that."""
    response = api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": "1/0123abcd/artifacts"})
    assert response.status_code == 200 and response.json() == {}
