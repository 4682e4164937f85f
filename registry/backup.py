"""Backup and restore of a whole instance: the database (pg_dump/pg_restore on PostgreSQL, SQLite's online backup API
on the embedded default) and the artifact store (its blobs, hashed while copied; on a remote store such as S3, a
manifest of digests to check a bucket copy against).

Consistency: the database is dumped first, then the blobs the dump records are copied. Blobs are content-addressed
and never rewritten, so a blob the dump refers to is the same bytes whenever it is copied; garbage collection deletes
a blob only after it has stayed unreferenced for STRATUM_GC_GRACE_SECONDS, so none the dump refers to disappears
while the copy runs, as long as the copy takes less than the grace (README: "Backup and restore").
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from django.db import connections
from django.utils import timezone

from registry.artifacts import gc
from registry.artifacts.storage import CHUNK, artifact_storage, blob_name
from registry.models import AccessToken, Blob, RegisteredModel, Run

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.dump"
BLOBS_DIR = "store"

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class RestoreReport:
    """What a restore put back and what it checked."""

    vendor: str
    blobs: int = 0
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def _database() -> dict[str, Any]:
    return settings.DATABASES["default"]


def database_vendor() -> str:
    """Return 'postgresql' or 'sqlite' for the configured database (others are refused)."""
    engine = _database()["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"Backups support PostgreSQL and SQLite, not {engine}.")


def _pg_args(db: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    args = ["--dbname", str(db["NAME"])]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL's client tools are needed).") from exc
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")
    return done


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(src: Any, dst: Any) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: src.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
        dst.write(chunk)
    return digest.hexdigest(), size


def _dump_database(dest: Path, vendor: str) -> Path:
    db = _database()
    if vendor == "sqlite":
        target = dest / SQLITE_FILE
        source = sqlite3.connect(str(db["NAME"]))
        copy = sqlite3.connect(str(target))
        try:
            with copy:
                source.backup(copy)  # SQLite's online backup: a consistent copy while others keep writing
        finally:
            copy.close()
            source.close()
        return target
    target = dest / PG_FILE
    args, env = _pg_args(db)
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args], env)
    return target


def _dumped_blobs(dump: Path, vendor: str) -> list[tuple[str, int]]:
    """The blobs the dump records (read from the dump itself, so the manifest matches it exactly)."""
    table = Blob._meta.db_table
    if vendor == "sqlite":
        conn = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
        try:
            return [(str(sha), int(size)) for sha, size in conn.execute(
                f'SELECT "sha256", "size" FROM "{table}" ORDER BY "sha256"')]  # noqa: S608 - our own table name
        finally:
            conn.close()
    done = _run(["pg_restore", "--data-only", f"--table={table}", "--file=-", str(dump)], dict(os.environ))
    rows: list[tuple[str, int]] = []
    columns: list[str] | None = None
    for line in done.stdout.splitlines():
        if columns is None:
            if line.startswith("COPY ") and f"{table} (" in line:
                columns = [c.strip().strip('"') for c in line.split("(", 1)[1].split(")", 1)[0].split(",")]
            continue
        if line == "\\.":
            break
        values = dict(zip(columns, line.split("\t"), strict=True))
        rows.append((values["sha256"], int(values["size"])))
    return sorted(rows)


def _is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def backup_create(dest: Path, *, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Write a consistent backup of this instance into the new or empty folder `dest`; return its manifest."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty folder; give a new folder for the backup.")
    dest.mkdir(parents=True, exist_ok=True)
    vendor = database_vendor()
    started = timezone.now()
    progress(f"Dumping the {vendor} database ...")
    dump = _dump_database(dest, vendor)
    blobs = _dumped_blobs(dump, vendor)
    storage = artifact_storage()
    local = _is_local(storage)
    missing: list[str] = []
    copied = 0
    if local:
        progress(f"Copying {len(blobs)} blob(s) ...")
        for sha, size in blobs:
            name = blob_name(sha)
            if not storage.exists(name):
                missing.append(sha)
                continue
            target = dest / BLOBS_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as src, open(target, "wb") as dst:
                digest, length = _copy_hashing(src, dst)
            if digest != sha or length != size:
                raise BackupError(f"Blob {sha} in the store does not hash to its name (got {digest}, {length} "
                                  "bytes): the store is damaged; nothing was restored from this backup.")
            copied += length
    files = []
    for name in sorted(gc.known_files()):
        if not storage.exists(name):
            continue
        if local:
            target = dest / BLOBS_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as src, open(target, "wb") as dst:
                digest, length = _copy_hashing(src, dst)
        else:
            with storage.open(name, "rb") as src:
                digest, length = _copy_hashing(src, _Discard())
        files.append({"name": name, "sha256": digest, "size": length})
    manifest = {
        "format": FORMAT, "created_at": started.isoformat(), "finished_at": timezone.now().isoformat(),
        "database": {"vendor": vendor, "file": dump.name, "sha256": _hash_file(dump)},
        "store": {"copied": local, "backend": type(storage).__name__},
        "blobs": [{"sha256": sha, "size": size} for sha, size in blobs],
        "files": files, "missing": missing,
    }
    # The manifest is written last, through a temporary name: a folder with a manifest holds a whole backup.
    part = dest / (MANIFEST + ".part")
    part.write_text(json.dumps(manifest, indent=1))
    part.replace(dest / MANIFEST)
    return manifest


class _Discard:
    def write(self, data: bytes) -> None:
        pass


def read_manifest(src: Path) -> dict[str, Any]:
    """Load and check a backup's manifest."""
    path = Path(src) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{src} holds no {MANIFEST}: not a (complete) Stratum backup.")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Backup format {manifest.get('format')!r} is not supported (this Stratum reads {FORMAT}).")
    return manifest


def instance_is_empty() -> list[str]:
    """Return what this instance already holds (empty list: a fresh instance that a restore may fill)."""
    held = []
    for label, model in (("registered models", RegisteredModel), ("blobs", Blob), ("runs", Run),
                         ("access tokens", AccessToken)):
        if model.objects.exists():
            held.append(label)
    from django.contrib.auth import get_user_model

    if get_user_model().objects.exists():
        held.append("users")
    storage = artifact_storage()
    if any(not name.startswith(tuple(f"{d}/" for d in gc.SPOOL_FOLDERS)) for name in gc.walk(storage)):
        held.append("files in the artifact store")
    return held


def _restore_database(src: Path, manifest: dict[str, Any], vendor: str) -> None:
    db = _database()
    dump = src / manifest["database"]["file"]
    if _hash_file(dump) != manifest["database"]["sha256"]:
        raise BackupError(f"{dump} does not match the digest in the manifest: the backup is damaged.")
    connections.close_all()
    if vendor == "sqlite":
        source = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
        target = sqlite3.connect(str(db["NAME"]))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return
    args, env = _pg_args(db)
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
          *args, str(dump)], env)


def _put(storage: Storage, name: str, source: Path, expected: str) -> None:
    """Store `source` under `name` unless an identical file is there already."""
    if storage.exists(name):
        with storage.open(name, "rb") as fh:
            if _copy_hashing(fh, _Discard())[0] == expected:
                return
        storage.delete(name)
    with open(source, "rb") as fh:
        saved = storage.save(name, File(fh, name=name))
    if saved != name:
        raise BackupError(f"The store saved {name} as {saved}: another writer is using this store.")


def store_verify(manifest: dict[str, Any], storage: Storage | None = None) -> list[str]:
    """Re-hash every blob and file the manifest lists from the store; return the problems (none: all intact)."""
    storage = storage or artifact_storage()
    problems = []
    wanted = [(blob_name(b["sha256"]), b["sha256"], b["size"]) for b in manifest["blobs"]]
    wanted += [(f["name"], f["sha256"], f["size"]) for f in manifest["files"]]
    for name, sha, size in wanted:
        if not storage.exists(name):
            problems.append(f"{name} is missing from the store")
            continue
        with storage.open(name, "rb") as fh:
            digest, length = _copy_hashing(fh, _Discard())
        if digest != sha or length != size:
            problems.append(f"{name} hashes to {digest} ({length} bytes), not {sha} ({size} bytes)")
    return problems


def backup_restore(src: Path, *, force: bool = False, progress: Progress = lambda _: None) -> RestoreReport:
    """Restore the backup in `src` into this instance (refused if it holds anything, unless `force`), then re-hash
    every blob and file from the store; the report lists any problem."""
    src = Path(src)
    manifest = read_manifest(src)
    vendor = database_vendor()
    if manifest["database"]["vendor"] != vendor:
        raise BackupError(f"This backup holds a {manifest['database']['vendor']} database and this instance runs "
                          f"on {vendor}; restore it into a {manifest['database']['vendor']} instance.")
    held = instance_is_empty()
    if held and not force:
        raise BackupError(f"This instance is not empty (it holds {', '.join(held)}); a restore would replace it. "
                          "Restore into a fresh instance, or pass --force to replace everything.")
    storage = artifact_storage()
    copied = manifest["store"]["copied"]
    if copied:
        for entry in manifest["blobs"]:
            if not (src / BLOBS_DIR / blob_name(entry["sha256"])).is_file() and entry["sha256"] not in \
                    manifest.get("missing", []):
                raise BackupError(f"Blob {entry['sha256']} is listed in the manifest but not in {src / BLOBS_DIR}.")
    progress(f"Restoring the {vendor} database ...")
    _restore_database(src, manifest, vendor)
    report = RestoreReport(vendor=vendor)
    if copied:
        progress(f"Restoring {len(manifest['blobs'])} blob(s) and {len(manifest['files'])} file(s) ...")
        for entry in manifest["blobs"]:
            source = src / BLOBS_DIR / blob_name(entry["sha256"])
            if source.is_file():
                _put(storage, blob_name(entry["sha256"]), source, entry["sha256"])
                report.blobs += 1
                report.bytes += entry["size"]
        for entry in manifest["files"]:
            _put(storage, entry["name"], src / BLOBS_DIR / entry["name"], entry["sha256"])
            report.files += 1
    progress("Re-hashing every blob and file from the store ...")
    report.problems = store_verify(manifest, storage)
    report.problems += [f"blob {sha} was missing when the backup was taken" for sha in manifest.get("missing", [])]
    return report
