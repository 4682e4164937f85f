"""`manage.py restore SRC [--force]`: restore a backup into a fresh instance and re-hash every artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.backup import BackupError, backup_restore


class Command(BaseCommand):
    """Restore a backup written by `manage.py backup`."""

    help = ("Restore the backup in SRC into this instance: the database, then the blobs and files, each re-hashed "
            "from the store afterwards. Refused when this instance already holds data, unless --force (which "
            "replaces it). Run `manage.py migrate` afterwards when this Stratum is newer than the backup.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src", help="A folder written by `manage.py backup`.")
        parser.add_argument("--force", action="store_true",
                            help="Replace what this instance holds (its database and matching store files).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = backup_restore(Path(options["src"]), force=options["force"], progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if report.problems:
            for problem in report.problems:
                self.stderr.write(f"  - {problem}")
            raise CommandError(f"Restored the {report.vendor} database, but {len(report.problems)} artifact "
                               "problem(s) were found (listed above).")
        self.stdout.write(self.style.SUCCESS(
            f"Restored the {report.vendor} database, {report.blobs} blob(s) ({report.bytes} bytes) and "
            f"{report.files} other file(s); every artifact re-hashes to its digest."))
