"""Fill lineage (datasets, code commits) for versions registered before lineage existed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registry.lineage import services as lineage


class Command(BaseCommand):
    """manage.py lineage_backfill: idempotent; safe to run again."""

    help = "Record lineage nodes and edges for every existing model version (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the backfill and report how many edges it added."""
        added = lineage.lineage_backfill()
        self.stdout.write(self.style.SUCCESS(f"Lineage backfill added {added} edge(s)."))
