"""Start Stratum the way production runs it (uWSGI with deploy/uwsgi.ini) on a fresh SQLite database, for tests."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
UWSGI = Path(sys.executable).with_name("uwsgi")


def wait_healthy(proc: subprocess.Popen, port: int, log: Path, what: str, seconds: float = 90) -> None:
    """Wait until the server `proc` answers GET /healthz on `port` with 200; fail the test with the end of its log
    when it exits first or does not answer within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer /healthz within {seconds:.0f} s")
        time.sleep(0.3)


@contextmanager
def uwsgi_stratum(var: Path, *, processes: int, env_after_setup: dict[str, str] | None = None,
                  env: dict[str, str] | None = None) -> Iterator[tuple[int, str]]:
    """Migrate a fresh SQLite Stratum in `var`, create user 'web' with a token, serve it with uWSGI; yield (port,
    token) once /healthz answers, and stop the server (its whole process group) afterwards. `env_after_setup`
    applies to the server only (e.g. a REDIS_URL that points at nothing); `env` to the set-up and the server (e.g.
    a DATABASE_URL, REDIS_URL and object store that several nodes share)."""
    if not UWSGI.exists():
        pytest.fail(f"{UWSGI} is missing: pyuwsgi is a dependency (pip install -e .)")
    shared = env or {}
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env.update(shared)
    port = free_port()
    env.update({"STRATUM_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "stratum.settings", "STRATUM_HTTPS": "false",
                "STRATUM_BIND": f"127.0.0.1:{port}", "STRATUM_WEB_PROCESSES": str(processes)})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    script = ("from django.contrib.auth import get_user_model; from django.db import IntegrityError; "
              "from registry import access; User = get_user_model()\n"
              "try:\n    u = User.objects.create_user('web', password='web-pw-123456-x')\n"
              "except IntegrityError:  # another node of a shared database made it\n"
              "    u = User.objects.get(username='web')\n"
              "print(access.token_create(user=u, actor=u, name='web')[1])")
    token = subprocess.run([*manage, "shell", "-c", script], env=env, cwd=ROOT, check=True, capture_output=True,
                           text=True, timeout=120).stdout.strip().splitlines()[-1]
    env.update(env_after_setup or {})
    log = open(var / "uwsgi.log", "wb")
    proc = subprocess.Popen([str(UWSGI), "--ini", str(ROOT / "deploy" / "uwsgi.ini")], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(proc, port, var / "uwsgi.log", "uWSGI")
        yield port, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
