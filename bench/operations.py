"""Operations figures on a fresh embedded instance (SQLite, local store): how fast blob garbage collection deletes
unreferenced blobs and walks the store, and how fast `backup` and `restore` move a store of a given size.

    python bench/operations.py [--versions 100] [--files 10] [--kib 256]

Registers VERSIONS versions of FILES distinct files of KIB KiB each, deletes half the versions, then times
`gc_artifacts --dry-run`, `gc_artifacts --grace 0`, `backup` and `restore` into another fresh instance (each timed
inside its process, Django's start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, say

SEED = """
import os
from django.contrib.auth import get_user_model
from registry import services
from registry.artifacts.storage import spool_stream
import io
n, files, kib = {versions}, {files}, {kib}
user = get_user_model().objects.create_user("bench", password="bench-pw-123456")
model = services.model_create(actor=user, name="bench")
made = []
for v in range(n):
    uploads = [(f"f{{i}}.bin", spool_stream(io.BytesIO(os.urandom(kib * 1024)))) for i in range(files)]
    made.append(services.version_create(model=model, actor=user, files=uploads))
for version in made[::2]:
    services.version_delete(version=version, actor=user)
"""


def instance(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "STRATUM_ARTIFACT_ROOT"}}
    env.update({"STRATUM_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "stratum.settings", "STRATUM_HTTPS": "false",
                "STRATUM_ARTIFACT_ROOT": str(var / "artifacts")})
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def timed(env: dict[str, str], *command: str) -> tuple[float, str]:
    """Run one management command inside a Django process and time only the command (not the start-up)."""
    script = (f"import io, json, time; from django.core.management import call_command; out = io.StringIO(); "
              f"t = time.perf_counter(); call_command(*{list(command)!r}, stdout=out); "
              f"print(json.dumps([time.perf_counter() - t, out.getvalue()]))")
    elapsed, output = json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])
    return elapsed, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--kib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratum-bench-ops-") as tmp:
        source, target = instance(Path(tmp) / "a"), instance(Path(tmp) / "b")
        for env in (source, target):
            Path(env["STRATUM_VAR_DIR"]).mkdir()
            manage(env, "migrate", "--noinput")
        blobs = args.versions * args.files
        say(f"Seeding {args.versions} versions x {args.files} files x {args.kib} KiB = {blobs} blobs "
            f"({blobs * args.kib / 1024:.0f} MiB), then deleting every other version ...")
        manage(source, "shell", "-c", SEED.format(versions=args.versions, files=args.files, kib=args.kib))
        say(f"(load while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

        dry, out = timed(source, "gc_artifacts", "--dry-run", "--grace", "0", "--json")
        say(f"gc_artifacts --dry-run: {json.loads(out)['blobs_deleted']} blob(s) would go, {dry:.2f} s")
        wet, out = timed(source, "gc_artifacts", "--grace", "0", "--json")
        report = json.loads(out)
        say(f"gc_artifacts: {report['blobs_deleted']} blob(s) deleted, {report['bytes_freed'] / 2**20:.0f} MiB "
            f"freed, {wet:.2f} s ({report['blobs_deleted'] / wet:.0f} blobs/s)")
        again, _ = timed(source, "gc_artifacts", "--grace", "0")
        say(f"gc_artifacts with nothing to delete (checks {blobs - report['blobs_deleted']} blobs, walks the store): "
            f"{again:.2f} s")

        backup_dir = Path(tmp) / "backup"
        took, _ = timed(source, "backup", str(backup_dir))
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        size = sum(b["size"] for b in manifest["blobs"]) / 2**20
        say(f"backup: {len(manifest['blobs'])} blob(s), {size:.0f} MiB, {took:.2f} s ({size / took:.0f} MiB/s, "
            "each blob hashed while copied)")
        took, _ = timed(target, "restore", str(backup_dir))
        say(f"restore: {took:.2f} s ({size / took:.0f} MiB/s, every blob copied, then all re-hashed from the store)")


if __name__ == "__main__":
    main()
