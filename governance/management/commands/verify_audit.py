"""`manage.py verify_audit`: walk the audit hash chain and its signed checkpoints; exit 1 naming the first break."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance import audit, services


class Command(BaseCommand):
    """Verify the audit trail end to end."""

    help = "Recompute every audit event's hash in order and check the signed checkpoints; non-zero exit if broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--checkpoint", action="store_true",
                            help="After a successful verification, sign a checkpoint of the current head.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        verdict = audit.verify()
        elapsed = time.perf_counter() - started
        if not verdict.ok:
            for problem in verdict.problems:
                self.stderr.write(f"  - {problem}")
            raise CommandError(f"{verdict.summary} (checked in {elapsed:.2f}s)")
        self.stdout.write(self.style.SUCCESS(f"{verdict.summary} ({elapsed:.2f}s)"))
        if options["checkpoint"]:
            checkpoint = services.audit_checkpoint_create()
            if checkpoint:
                self.stdout.write(f"Signed checkpoint at #{checkpoint.seq}.")
