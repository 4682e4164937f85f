"""Backup and restore end to end: seed through the stock mlflow client, back up, restore into a fresh instance (a new
database and an empty artifact store, in other processes), then verify the audit trail, re-hash every artifact and
load the champion with the stock client from a server on the restored instance. Runs on the configured database:
SQLite by default, PostgreSQL (restored into <name>_restore) when DATABASE_URL points there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection

from governance import services as governance_services
from governance.models import CardExportJob
from registry.artifacts.storage import artifact_storage
from registry.models import Blob, RegisteredModel
from tests.conftest import free_port, need_service
from tests.integration.uwsgi_support import wait_healthy
from tests.registry.mlflow_support import mlflow_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]

REHASH = """
import hashlib, json
from registry.artifacts.storage import blob_open
from registry.models import Artifact, TrackedArtifact
checked, bad = 0, []
for row in [*Artifact.objects.select_related("blob"), *TrackedArtifact.objects.select_related("blob")]:
    digest = hashlib.sha256()
    with blob_open(row.blob) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    checked += 1
    if digest.hexdigest() != row.blob_id:
        bad.append(row.path)
print(json.dumps({"checked": checked, "bad": bad}))
"""


def _fresh_instance(tmp_path: Path) -> dict[str, str]:
    """The environment of a new, empty instance: its own database and artifact store, this one's keys (var/)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "STRATUM_ARTIFACT_ROOT"} and not k.startswith("MLFLOW_")}
    env.update({"DJANGO_SETTINGS_MODULE": "stratum.settings", "STRATUM_HTTPS": "false",
                "STRATUM_VAR_DIR": str(settings.VAR_DIR), "STRATUM_ARTIFACT_ROOT": str(tmp_path / "restored-store")})
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return env
    if shutil.which("createdb") is None:
        need_service("PostgreSQL client tools", "createdb/pg_dump are not installed")
    url = urlparse(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_restore"
    pg = ["--host", url.hostname or "127.0.0.1", "--port", str(url.port or 5432), "--username", url.username or ""]
    pg_env = {**os.environ, "PGPASSWORD": url.password or ""}
    subprocess.run(["dropdb", "--if-exists", "--force", *pg, name], check=True, env=pg_env, capture_output=True)
    subprocess.run(["createdb", *pg, name], check=True, env=pg_env, capture_output=True)
    env["DATABASE_URL"] = url._replace(path=f"/{name}").geturl()
    return env


def _manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*MANAGE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}")
    return done


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env, cwd=ROOT,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_healthy(proc, port, log, "the restored server")
    return proc, f"http://127.0.0.1:{port}"


def test_backup_wipe_restore_verify_and_load_the_champion(mlflow_env, owner, tmp_path, monkeypatch):  # noqa: F811
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    estimator = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    client = mlflow_env(owner)
    token = os.environ["MLFLOW_TRACKING_TOKEN"]
    # The fluent client remembers the last active experiment per process; another test in this worker may have
    # set one that this fresh database does not hold.
    mlflow.set_experiment("backup-restore")
    with mlflow.start_run():
        mlflow.log_param("C", 1.0)
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name="churn",
                                 pip_requirements=["scikit-learn"])
    client.set_registered_model_alias("churn", "champion", "1")
    storage = artifact_storage()
    export = storage.save("exports/cards/1-churn.pdf", ContentFile(b"%PDF-1.7 an exported card"))
    CardExportJob.objects.create(model=RegisteredModel.objects.get(name="churn"), requested_by=owner, state="done",
                                 file_name=export)
    assert governance_services.audit_checkpoint_create() is not None
    expected = list(estimator.predict(X))
    blobs = dict(Blob.objects.values_list("sha256", "size"))

    backup = tmp_path / "backup"
    call_command("backup", str(backup))
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {b["sha256"]: b["size"] for b in manifest["blobs"]} == blobs
    assert [f["name"] for f in manifest["files"]] == [export] and manifest["missing"] == []
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("backup", str(backup))

    # Wipe: a fresh instance, nothing shared with this one but its keys.
    env = _fresh_instance(tmp_path)
    _manage(env, "migrate", "--noinput")
    restored = _manage(env, "restore", str(backup))
    assert "every artifact re-hashes to its digest" in restored.stdout
    refused = _manage(env, "restore", str(backup), check=False)
    assert refused.returncode != 0 and "not empty" in refused.stderr and "--force" in refused.stderr
    assert _manage(env, "restore", str(backup), "--force").returncode == 0
    audit = _manage(env, "verify_audit")
    print(audit.stdout)
    assert audit.returncode == 0
    rehash = json.loads(_manage(env, "shell", "-c", REHASH).stdout.strip().splitlines()[-1])
    assert rehash["checked"] >= 3 and rehash["bad"] == []
    restored_store = tmp_path / "restored-store"
    assert (restored_store / export).read_bytes() == b"%PDF-1.7 an exported card"

    proc, url = _serve(env, tmp_path / "restored-server.log")
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)  # the token was backed up with the database
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        loaded = mlflow.pyfunc.load_model("models:/churn@champion")
        assert list(loaded.predict(X)) == expected
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_restore_refuses_a_backup_of_another_database_or_an_incomplete_one(tmp_path, owner):
    with pytest.raises(CommandError, match="not a \\(complete\\) Stratum backup"):
        call_command("restore", str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "database": {
        "vendor": "postgresql" if connection.vendor == "sqlite" else "sqlite", "file": "x", "sha256": ""},
        "store": {"copied": True}, "blobs": [], "files": []}))
    with pytest.raises(CommandError, match="restore it into a"):
        call_command("restore", str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "database": {
        "vendor": "sqlite" if connection.vendor == "sqlite" else "postgresql", "file": "x", "sha256": ""},
        "store": {"copied": True}, "blobs": [], "files": []}))
    with pytest.raises(CommandError, match=r"not empty.*--force"):  # `owner` exists: this instance holds a user
        call_command("restore", str(tmp_path))
