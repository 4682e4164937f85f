"""Settings come from the environment; a deployment configuration passes Django's deploy checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(args: list[str], env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    unset = {"DEBUG", "SECRET_KEY", "STRATUM_HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE"}  # the browser tests set the last
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base.update({"STRATUM_VAR_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=base, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_is_clean_with_debug_off_and_a_real_secret(tmp_path):
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"],
                     {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(64)}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_local_default_generates_a_private_secret_key(tmp_path):
    result = _manage(["check"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "secret_key"
    assert len(key_file.read_text()) > 50 and oct(key_file.stat().st_mode)[-3:] == "600"


def test_wsgi_start_up_freezes_its_objects_out_of_the_collector(tmp_path):
    """Loading the WSGI app imports every view and freezes start-up objects, so full collections stay short."""
    code = "import gc, stratum.wsgi; print(gc.get_freeze_count(), len(gc.get_objects()))"
    env = {**os.environ, "STRATUM_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "stratum.settings"}
    env.pop("DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    frozen, tracked = (int(n) for n in out.stdout.split())
    assert frozen > 100_000 and tracked < frozen / 10  # what a full collection still walks: a small remainder


def _settings_json(expression: str, env: dict[str, str], tmp_path) -> object:
    """Evaluate `expression` over the settings module loaded with `env` (in a fresh interpreter) and return it."""
    import json

    code = f"import json, stratum.settings as s; print(json.dumps({expression}))"
    unset = ("STRATUM_DB_", "STRATUM_CACHE", "REDIS_URL", "DATABASE_URL")
    full = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    full.update({"STRATUM_VAR_DIR": str(tmp_path), **env})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_postgresql_connections_start_with_statement_lock_and_connect_timeouts(tmp_path):
    pg = {"DATABASE_URL": "postgres://u@db.example:5432/stratum"}
    options = _settings_json('s.DATABASES["default"]["OPTIONS"]', pg, tmp_path)
    assert options["options"] == "-c statement_timeout=30000 -c lock_timeout=10000"
    assert options["connect_timeout"] == 5
    tuned = _settings_json('s.DATABASES["default"]["OPTIONS"]', {**pg, "STRATUM_DB_STATEMENT_TIMEOUT_MS": "0",
                                                                 "STRATUM_DB_LOCK_TIMEOUT_MS": "1500",
                                                                 "STRATUM_DB_CONNECT_TIMEOUT": "3"}, tmp_path)
    assert tuned["options"] == "-c lock_timeout=1500" and tuned["connect_timeout"] == 3
    off = _settings_json('s.DATABASES["default"]["OPTIONS"]', {**pg, "STRATUM_DB_STATEMENT_TIMEOUT_MS": "0",
                                                               "STRATUM_DB_LOCK_TIMEOUT_MS": "0"}, tmp_path)
    assert "options" not in off  # nothing sent: works behind a PgBouncer that refuses the parameter


def test_the_redis_cache_gives_up_within_its_short_socket_timeouts(tmp_path):
    caches = _settings_json("s.CACHES", {"REDIS_URL": "redis://cache.example:6379/0"}, tmp_path)
    assert caches["default"]["OPTIONS"] == {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    tuned = _settings_json("s.CACHES", {"REDIS_URL": "redis://cache.example:6379/0",
                                        "STRATUM_CACHE_TIMEOUT_SECONDS": "0.2"}, tmp_path)
    assert tuned["default"]["OPTIONS"]["socket_timeout"] == 0.2
