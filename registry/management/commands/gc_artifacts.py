"""Collect the artifact store by hand: delete blobs unreferenced past their grace, list files nobody knows."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.artifacts.gc import store_collect


class Command(BaseCommand):
    """manage.py gc_artifacts [--dry-run] [--grace SECONDS] [--json]."""

    help = ("Delete artifact blobs that no version, run, scan, signature, job or card export refers to and that have "
            "stayed so past the grace period; files the store holds but Stratum does not know are listed, never "
            "deleted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Change nothing; report what would be deleted.")
        parser.add_argument("--grace", type=float, default=None,
                            help="Seconds a blob must stay unreferenced (default: STRATUM_GC_GRACE_SECONDS).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run one collection and report its counts, bytes freed and the unknown files."""
        if options["grace"] is not None and not options["grace"] >= 0:  # also refuses nan
            raise CommandError("--grace must be zero or more seconds.")
        report = store_collect(dry_run=options["dry_run"], grace=options["grace"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        verb = "Would delete" if report.dry_run else "Deleted"
        self.stdout.write(f"{verb} {len(report.deleted)} blob(s), {report.bytes_freed} byte(s) freed; "
                          f"{len(report.marked)} newly unreferenced (deleted after {report.grace_seconds:g} s), "
                          f"{len(report.waiting)} waiting, {len(report.in_flight)} in flight (skipped).")
        if report.unknown_files:
            self.stdout.write(f"{len(report.unknown_files)} file(s) in the store that Stratum does not know "
                              "(left alone):")
            for name in report.unknown_files:
                self.stdout.write(f"  {name}")
        if report.missing_files:
            self.stdout.write(self.style.WARNING(f"{len(report.missing_files)} blob(s) recorded in the database "
                                                 "have no file in the store:"))
            for digest in report.missing_files:
                self.stdout.write(f"  {digest}")
