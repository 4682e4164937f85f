"""Smoke test of the embedded default: no DATABASE_URL or REDIS_URL, a fresh var/ folder, SQLite, demo seeded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]



def test_fresh_checkout_migrates_seeds_and_serves_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env.update({"STRATUM_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "stratum.settings"})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True, timeout=300)
    seeded = subprocess.run([*manage, "seed_demo"], env=env, check=True, capture_output=True, text=True, timeout=300)
    assert "engineer" in seeded.stdout
    assert (tmp_path / "var" / "stratum.sqlite3").exists()
    port = free_port()
    server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert '"database": "ok"' in body
        assert "in-process" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
            assert response.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
