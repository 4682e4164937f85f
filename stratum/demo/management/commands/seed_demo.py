"""`manage.py seed_demo`: fill the registry with demo users and real scikit-learn models (idempotent)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stratum.demo.registry import DEFAULT_USERS, DemoUser, seed_demo


class Command(BaseCommand):
    """Create demo logins, train and register demo models, set stages and aliases, print the logins."""

    help = (
        "Seed a demo registry: users admin/engineer/reviewer/compliance and four scikit-learn models trained "
        "on datasets bundled with scikit-learn. Safe to run again: only what is missing is created."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for demo in DEFAULT_USERS:
            parser.add_argument(
                f"--{demo.username}-password", default=demo.password, metavar="PASSWORD",
                help=f"Password for the {demo.username!r} login when it is created (default: %(default)s).",
            )
        parser.add_argument(
            "--reset-passwords", action="store_true",
            help="Also set the passwords of demo logins that already exist.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = tuple(
            DemoUser(d.username, options[f"{d.username}_password"], d.superuser, d.role, d.description)
            for d in DEFAULT_USERS
        )
        started = time.monotonic()
        report = seed_demo(users=users, reset_passwords=options["reset_passwords"])
        elapsed = time.monotonic() - started

        out = self.stdout
        if report.models_created or report.versions_created:
            out.write(self.style.SUCCESS(
                f"Seeded {len(report.models_created)} model(s) and {len(report.versions_created)} version(s) "
                f"in {elapsed:.1f}s."
            ))
            for line in report.versions_created:
                out.write(f"  + {line}")
        else:
            out.write("Demo data already present: nothing to create.")
        for note in report.notes:
            out.write(self.style.WARNING(f"  ! {note}"))

        out.write("")
        out.write("Demo logins (for local demos only):")
        rows = [("login", "password", "access", "account")]
        for demo, created in report.users:
            password_set = created or options["reset_passwords"]
            shown = demo.password if password_set else "(unchanged; existing account)"
            rows.append((demo.username, shown, demo.description, "new" if created else "existing"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for index, row in enumerate(rows):
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            out.write(("  " + "  ".join(cells)).rstrip())
            if index == 0:
                out.write("  " + "  ".join("-" * width for width in widths))

        out.write("")
        out.write(report.access_note)
        if report.token:
            out.write(f"  {report.token}")
            out.write("  e.g. curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/api/v1/models")
        for title, lines in report.sections:
            out.write("")
            out.write(title)
            for line in lines:
                out.write(f"  {line}")
