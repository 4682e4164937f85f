"""The stock mlflow client against a live Stratum: registering a malicious pickle ends in FAILED_REGISTRATION with
the reason, every download of it fails naming the quarantine, and a four-eyes release lets it through."""

from __future__ import annotations

import pytest

from registry.models import ModelVersion, RegisteredModel, Role
from registry.pipeline.scan import release as releases
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture
from tests.registry.pickle_corpus import MALICIOUS

pytestmark = pytest.mark.django_db(transaction=True)

EVIL = MALICIOUS["os.system"][0]  # never loaded: the client downloads bytes, nothing here unpickles them


def _chain(exc: BaseException | None) -> str:
    """The messages of an exception and of every exception it was raised from."""
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(parts)


def test_stock_client_sees_failed_registration_and_cannot_download(mlflow_env, owner, make_user, grant,  # noqa: F811
                                                                   tmp_path):
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow_env(owner)
    client.create_registered_model("churn")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(EVIL)
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), "model")
    run_id = run.info.run_id

    # The client waits for registration and fails with Stratum's reason.
    with pytest.raises(MlflowException) as failed:
        client.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id, await_creation_for=60)
    assert "FAILED_REGISTRATION" in str(failed.value) and "posix.system" in str(failed.value)
    version = client.get_model_version("churn", "1")
    assert version.status == "FAILED_REGISTRATION" and "model.pkl" in version.status_message
    assert "posix.system" in version.status_message

    # Every way the client fetches the bytes fails, naming the quarantine; nothing is written.
    out = tmp_path / "out"
    for uri in ("models:/churn/1", f"runs:/{run_id}/model", f"runs:/{run_id}/model/model.pkl"):
        with pytest.raises(Exception) as refused:
            mlflow.artifacts.download_artifacts(uri, dst_path=str(out))
        said = _chain(refused.value)
        if uri.startswith("models:/"):
            assert "Quarantined" in said and "posix.system" in said, (uri, said)
        # (for runs:/ URIs the client swallows the server's answer and says only that the download failed)
        assert not any(p.name == "model.pkl" and p.stat().st_size for p in out.rglob("*")), uri

    # A maintainer asks, an administrator approves: the same client gets READY and the exact bytes.
    maintainer, admin = make_user("maint"), make_user("admin", staff=True)
    model = RegisteredModel.objects.get(name="churn")
    grant(model, maintainer, Role.MAINTAINER)
    mv = ModelVersion.objects.get(model=model, number=1)
    asked = releases.release_request(version=mv, path="model.pkl", accepted_globals=["posix.system"],
                                     reason="A test fixture, reviewed.", actor=maintainer)
    releases.release_approve(release=asked, actor=admin)
    assert client.get_model_version("churn", "1").status == "READY"
    fetched = mlflow.artifacts.download_artifacts("models:/churn/1", dst_path=str(tmp_path / "released"))
    assert (tmp_path / "released").exists()
    assert next(p for p in (tmp_path / "released").rglob("model.pkl")).read_bytes() == EVIL, fetched
