"""`manage.py backup DEST`: write a consistent snapshot of this instance (database, then the blobs it records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.backup import BackupError, backup_create


class Command(BaseCommand):
    """Back up the database and the artifact store into a new folder."""

    help = ("Back up this instance into DEST (a new or empty folder): the database (pg_dump on PostgreSQL, SQLite's "
            "online backup on the default), then every blob the dump records, hashed while copied, and a "
            "manifest.json written last. On a remote store (S3) the manifest lists the digests to check a bucket "
            "copy against.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dest", help="A new or empty folder to write the backup into.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_create(Path(options["dest"]), progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        size = sum(b["size"] for b in manifest["blobs"])
        where = "copied" if manifest["store"]["copied"] else "listed (copy the bucket separately: see README)"
        self.stdout.write(self.style.SUCCESS(
            f"Backed up the {manifest['database']['vendor']} database and {len(manifest['blobs'])} blob(s) "
            f"({size} bytes, {where}) and {len(manifest['files'])} other file(s) into {options['dest']}."))
        for sha in manifest["missing"]:
            self.stdout.write(self.style.WARNING(f"  ! blob {sha} had no file in the store (not backed up)"))
